#[tokio::main]
async fn main() -> std::process::ExitCode {
    omneuro_platform::app::main(repairbot::NAME, repairbot::DEFAULTS, repairbot::build).await
}
