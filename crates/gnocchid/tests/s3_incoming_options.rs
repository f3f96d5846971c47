//! `[incoming] driver = s3` reads upstream's `s3_*` options, each defaulting
//! to the `[storage]` one (upstream's `${storage.s3_...}` defaults), so an
//! operator's existing gnocchi.conf works as it is.

use gnocchid::config::{Config, ConfigError, IncomingDriver, Overrides, StorageDriver};

fn load(text: &str) -> Result<Config, ConfigError> {
    let dir = std::env::temp_dir().join(format!(
        "gnocchid-s3-options-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("gnocchi.conf");
    std::fs::write(&path, text).unwrap();
    let c = Config::load_without_environment(Some(&path), &Overrides::default());
    let _ = std::fs::remove_dir_all(&dir);
    c
}

#[test]
fn incoming_s3_options_default_to_the_storage_ones() {
    let c = load(
        "[storage]\ndriver = s3\ns3_endpoint_url = http://rgw:7480\ns3_region_name = eu-west-1\n\
         s3_access_key_id = AK\ns3_secret_access_key = SK\ns3_bucket_prefix = prod\n\
         s3_max_pool_connections = 20\n[incoming]\ndriver = s3\ns3_bucket_prefix = fast\n",
    )
    .unwrap();
    let IncomingDriver::S3(inc) = &c.incoming else {
        panic!("incoming is {:?}", c.incoming)
    };
    assert_eq!(inc.endpoint_url.as_deref(), Some("http://rgw:7480"));
    assert_eq!(inc.region_name.as_deref(), Some("eu-west-1"));
    assert_eq!(inc.access_key_id.as_deref(), Some("AK"));
    assert_eq!(inc.secret_access_key.as_deref(), Some("SK"));
    assert_eq!(inc.bucket_prefix, "fast");
    assert_eq!(inc.measure_bucket_name(), "fast-measure");
    assert_eq!(inc.max_pool_connections, 20);
    assert_eq!(inc.check_consistency_timeout, 60.0);
    let StorageDriver::S3(st) = &c.storage else {
        panic!("storage is {:?}", c.storage)
    };
    assert_eq!(st.bucket_name(), "prod-aggregates");
    // No coordination URL can be derived from S3 (nor from SQLite).
    assert!(c.coordination.is_none());
}

#[test]
fn incoming_s3_alone_keeps_upstreams_defaults() {
    let c = load("[incoming]\ndriver = s3\ns3_endpoint_url = http://127.0.0.1:9000\n").unwrap();
    assert!(matches!(c.storage, StorageDriver::File));
    let IncomingDriver::S3(inc) = &c.incoming else {
        panic!("incoming is {:?}", c.incoming)
    };
    assert_eq!(inc.measure_bucket_name(), "gnocchi-measure");
    assert_eq!(inc.max_pool_connections, 50);
    assert!(inc.access_key_id.is_none());
    for bad in [
        "s3_max_pool_connections = 0",
        "s3_check_consistency_timeout = -1",
        "s3_check_consistency_timeout = soon",
    ] {
        let err = load(&format!("[incoming]\ndriver = s3\n{bad}\n")).unwrap_err();
        assert!(err.to_string().contains("s3_"), "{bad}: {err}");
    }
    assert!(
        load("[incoming]\ndriver = swiftish\n")
            .unwrap_err()
            .to_string()
            .contains("supported: file, redis, s3")
    );
}
