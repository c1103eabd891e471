//! Whether the instances a rollout launches on top of the fleet fit in the account's On-Demand
//! vCPU quota. A serial deploy launches a whole second fleet by default: past the quota, Auto
//! Scaling's launches fail (`VcpuLimitExceeded`) half-way through, so prepare refuses first.
//!
//! The quotas are per instance family, in vCPUs
//! (<https://docs.aws.amazon.com/ec2/latest/instancetypes/ec2-instance-quotas.html>); CloudWatch
//! reports their use in `AWS/Usage`, by class
//! (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch-Usage-Metrics.html>).

use crate::ports::{PortResult, VcpuQuota};

/// The On-Demand vCPU quota an instance family counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaClass {
    /// The Service Quotas code (service `ec2`).
    pub quota_code: &'static str,
    /// The `Class` dimension of its `AWS/Usage` metric.
    pub usage_class: &'static str,
    /// As the Service Quotas console names it.
    pub name: &'static str,
}

const STANDARD: QuotaClass = QuotaClass {
    quota_code: "L-1216C47A",
    usage_class: "Standard/OnDemand",
    name: "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances",
};

/// Families by their letters (`m` of `m7g.large`, `inf` of `inf2.xlarge`).
const CLASSES: &[(&[&str], QuotaClass)] = &[
    (&["a", "c", "d", "h", "i", "m", "r", "t", "z"], STANDARD),
    (&["f"], QuotaClass { quota_code: "L-74FC7D96", usage_class: "F/OnDemand", name: "Running On-Demand F instances" }),
    (&["g", "vt"], QuotaClass { quota_code: "L-DB2E81BA", usage_class: "G/OnDemand", name: "Running On-Demand G and VT instances" }),
    (&["inf"], QuotaClass { quota_code: "L-1945791B", usage_class: "Inf/OnDemand", name: "Running On-Demand Inf instances" }),
    (&["p"], QuotaClass { quota_code: "L-417A185B", usage_class: "P/OnDemand", name: "Running On-Demand P instances" }),
    (&["x"], QuotaClass { quota_code: "L-7295265B", usage_class: "X/OnDemand", name: "Running On-Demand X instances" }),
];

/// The quota `instance_type` counts against; `None` for a family not listed here (High
/// Memory, DL, Trn, HPC...), whose quota is then not checked.
pub fn on_demand_class(instance_type: &str) -> Option<QuotaClass> {
    let family: String = instance_type.chars().take_while(|c| c.is_ascii_lowercase()).collect();
    CLASSES.iter().find(|(families, _)| families.contains(&family.as_str())).map(|(_, class)| *class)
}

/// What the quota check found.
#[derive(Debug, Clone, PartialEq)]
pub enum SurgeFit {
    /// The surge fits, or launches nothing.
    Fits {
        /// vCPUs the surge adds.
        needed: f64,
        /// The quota less what is in use.
        headroom: f64,
        /// The quota's name.
        quota: &'static str,
    },
    /// It does not fit: Auto Scaling's launches would fail part-way.
    TooBig {
        /// vCPUs the surge adds.
        needed: f64,
        /// The quota less what is in use.
        headroom: f64,
        /// The quota's value.
        limit: f64,
        /// vCPUs in use.
        used: f64,
        /// The quota's name and code.
        quota: QuotaClass,
    },
    /// Nothing to check against, and why (an unlisted family, no applied quota, no usage data).
    NotChecked(String),
}

impl SurgeFit {
    /// One line for an operator.
    pub fn describe(&self, instances: u32, instance_type: &str) -> String {
        match self {
            SurgeFit::Fits { needed, headroom, quota } => {
                format!("{instances} more {instance_type} need {needed} vCPUs; {headroom} free in {quota}")
            }
            SurgeFit::TooBig { needed, headroom, limit, used, quota } => format!(
                "{instances} more {instance_type} need {needed} vCPUs, but {} ({}) has {headroom} free ({used} of {limit} in use)",
                quota.name, quota.quota_code
            ),
            SurgeFit::NotChecked(why) => format!("not checked: {why}"),
        }
    }

    /// What to do about a surge that doesn't fit.
    pub fn fix(&self) -> Option<String> {
        match self {
            SurgeFit::TooBig { quota, .. } => Some(format!(
                "lower max_healthy_percent (the ceiling on what runs at once), or ask for more with: aws service-quotas request-service-quota-increase --service-code ec2 --quota-code {}",
                quota.quota_code
            )),
            _ => None,
        }
    }
}

/// Whether `instances` more instances of `instance_type` fit in its On-Demand vCPU quota now.
pub async fn surge_fit(account: &dyn VcpuQuota, instance_type: &str, instances: u32) -> PortResult<SurgeFit> {
    if instances == 0 {
        return Ok(SurgeFit::Fits { needed: 0.0, headroom: 0.0, quota: "no quota (nothing to launch)" });
    }
    let Some(class) = on_demand_class(instance_type) else {
        return Ok(SurgeFit::NotChecked(format!("no On-Demand vCPU quota known for {instance_type}")));
    };
    let Some(vcpus) = account.instance_vcpus(instance_type).await? else {
        return Ok(SurgeFit::NotChecked(format!("EC2 doesn't know the instance type {instance_type}")));
    };
    let Some(limit) = account.ec2_quota(class.quota_code).await? else {
        return Ok(SurgeFit::NotChecked(format!("the account has no applied value of {}", class.quota_code)));
    };
    let Some(used) = account.vcpu_usage(class.usage_class).await? else {
        return Ok(SurgeFit::NotChecked(format!("CloudWatch has no recent AWS/Usage data for {}", class.usage_class)));
    };
    let needed = f64::from(instances) * f64::from(vcpus);
    let headroom = (limit - used).max(0.0);
    Ok(if needed <= headroom {
        SurgeFit::Fits { needed, headroom, quota: class.name }
    } else {
        SurgeFit::TooBig { needed, headroom, limit, used, quota: class }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_map_to_their_quota_by_their_letters_not_a_prefix() {
        assert_eq!(on_demand_class("t3.micro").map(|c| c.quota_code), Some("L-1216C47A"));
        assert_eq!(on_demand_class("m7g.large").map(|c| c.usage_class), Some("Standard/OnDemand"));
        assert_eq!(on_demand_class("inf2.xlarge").map(|c| c.quota_code), Some("L-1945791B"));
        assert_eq!(on_demand_class("vt1.3xlarge").map(|c| c.quota_code), Some("L-DB2E81BA"));
        assert_eq!(on_demand_class("g5.xlarge").map(|c| c.quota_code), Some("L-DB2E81BA"));
        // `dl`, `trn`, `u-` are other quotas: not guessed as D, T or anything else.
        assert_eq!(on_demand_class("dl1.24xlarge"), None);
        assert_eq!(on_demand_class("trn1.2xlarge"), None);
        assert_eq!(on_demand_class("u-6tb1.metal"), None);
    }
}
