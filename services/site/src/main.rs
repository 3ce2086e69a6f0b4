#[tokio::main]
async fn main() -> std::process::ExitCode {
    omneuro_platform::app::main(site::NAME, &site::defaults(), site::build).await
}
