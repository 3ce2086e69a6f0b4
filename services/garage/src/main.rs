#[tokio::main]
async fn main() -> std::process::ExitCode {
    omneuro_platform::app::main(garage::NAME, garage::DEFAULTS, garage::build).await
}
