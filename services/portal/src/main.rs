#[tokio::main]
async fn main() -> std::process::ExitCode {
    if let Some(code) = portal::cli::run().await {
        return code;
    }
    omneuro_platform::app::main(portal::NAME, &portal::defaults(), portal::build).await
}
