//! Service Quotas: the account's On-Demand vCPU quota, which a rollout's surge must fit in.

use aws_sdk_servicequotas::Client;
use stepdeploy_core::ports::PortResult;

use crate::error::port_error;

const SERVICE: &str = "servicequotas";

/// The Service Quotas reader on the SDK.
#[derive(Clone, Debug)]
pub struct AwsServiceQuotas {
    client: Client,
}

impl AwsServiceQuotas {
    /// Wraps a client.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// The applied value of an EC2 quota (GetServiceQuota); `None` where the account has none
    /// (`NoSuchResourceException`: <https://docs.aws.amazon.com/servicequotas/2019-06-24/apireference/API_GetServiceQuota.html>).
    pub async fn ec2_quota(&self, quota_code: &str) -> PortResult<Option<f64>> {
        match self.client.get_service_quota().service_code("ec2").quota_code(quota_code).send().await {
            Ok(out) => Ok(out.quota().and_then(|q| q.value())),
            Err(e) => {
                let e = port_error(SERVICE, "GetServiceQuota", e);
                if e.code.as_deref() == Some("NoSuchResourceException") { Ok(None) } else { Err(e) }
            }
        }
    }
}
