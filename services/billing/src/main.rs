#[tokio::main]
async fn main() -> std::process::ExitCode {
    omneuro_platform::app::main(billing::NAME, billing::DEFAULTS, billing::build).await
}
