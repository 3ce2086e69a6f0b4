#[tokio::main]
async fn main() -> std::process::ExitCode {
    if let Some(code) = kb::cli::run().await {
        return code;
    }
    omneuro_platform::app::main(kb::NAME, kb::DEFAULTS, kb::build).await
}
