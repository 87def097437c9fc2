//! Seeds stock for local runs: `cargo run -p order-processor --example seed_inventory -- widget=100 gadget=5`
//! (reads `INVENTORY_TABLE`, `ORDERS_TABLE` and the usual AWS settings, e.g. `AWS_ENDPOINT_URL`).

use adapters::dynamo_orders::DynamoOrderStore;
use settings::Env;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = Env::from_process();
    let inventory = env.required("INVENTORY_TABLE")?;
    let orders = env.get("ORDERS_TABLE").unwrap_or_default();
    let settings = adapters::config::AwsSettings::from_env(&env)?;
    let sdk = adapters::aws::load_sdk_config(&settings).await;
    let store = DynamoOrderStore::new(adapters::aws::dynamodb_client(&sdk), orders, &inventory);
    let mut seeded = 0;
    for arg in std::env::args().skip(1) {
        let (product, quantity) = arg
            .split_once('=')
            .ok_or_else(|| format!("{arg:?}: expected product_id=quantity"))?;
        let quantity: i64 = quantity
            .parse()
            .ok()
            .filter(|q| *q >= 0)
            .ok_or_else(|| format!("{arg:?}: quantity must be a whole number >= 0"))?;
        domain::order::validate_id(product).map_err(|e| format!("{product:?}: {e}"))?;
        store.set_stock(product, quantity).await?;
        println!("{product} = {quantity}");
        seeded += 1;
    }
    if seeded == 0 {
        return Err("give at least one product_id=quantity".into());
    }
    Ok(())
}
