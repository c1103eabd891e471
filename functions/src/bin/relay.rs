//! The `relay` Lambda: CloudWatch alarm state changes, from EventBridge (see the crate docs).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stepdeploy_functions::serve("relay").await
}
