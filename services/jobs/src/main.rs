#[tokio::main]
async fn main() -> std::process::ExitCode {
    omneuro_platform::app::main(jobs::NAME, jobs::DEFAULTS, jobs::build).await
}
