#[tokio::main]
async fn main() -> std::process::ExitCode {
    omneuro_platform::app::main(kb::NAME, kb::DEFAULTS, kb::build).await
}
