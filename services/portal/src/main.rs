#[tokio::main]
async fn main() -> std::process::ExitCode {
    omneuro_platform::app::main(portal::NAME, &portal::defaults(), portal::build).await
}
