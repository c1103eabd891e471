//! The `pause` step Lambda (see the crate docs).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stepdeploy_functions::serve("pause").await
}
