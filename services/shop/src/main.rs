#[tokio::main]
async fn main() -> std::process::ExitCode {
    omneuro_platform::app::main(shop::NAME, shop::DEFAULTS, shop::build).await
}
