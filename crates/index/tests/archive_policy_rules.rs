//! Archive policy rules: upstream's listing order, rename, and the errors.

mod common;

use common::{indexer, policy};
use gnocchi_index::{ArchivePolicyRule, IndexError};

fn rule(name: &str, pattern: &str, ap: &str) -> ArchivePolicyRule {
    ArchivePolicyRule {
        name: name.into(),
        metric_pattern: pattern.into(),
        archive_policy_name: ap.into(),
    }
}

#[tokio::test]
async fn listed_by_pattern_desc_then_name_asc() {
    let (_dir, index) = indexer().await;
    index.create_archive_policy(&policy("low")).await.unwrap();
    for r in [
        rule("b", "disk.*", "low"),
        rule("z", "*", "low"),
        rule("a", "disk.*", "low"),
        rule("c", "cpu.*", "low"),
    ] {
        index.create_archive_policy_rule(&r).await.unwrap();
    }
    let names: Vec<String> = index
        .list_archive_policy_rules()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["a", "b", "c", "z"]);
    assert_eq!(
        index.get_archive_policy_rule("c").await.unwrap(),
        Some(rule("c", "cpu.*", "low"))
    );
    assert_eq!(index.get_archive_policy_rule("nope").await.unwrap(), None);
}

#[tokio::test]
async fn create_errors() {
    let (_dir, index) = indexer().await;
    index.create_archive_policy(&policy("low")).await.unwrap();
    assert!(matches!(
        index.create_archive_policy_rule(&rule("r", "*", "nope")).await,
        Err(IndexError::ArchivePolicyNotFound(n)) if n == "nope"
    ));
    index
        .create_archive_policy_rule(&rule("r", "*", "low"))
        .await
        .unwrap();
    assert!(matches!(
        index.create_archive_policy_rule(&rule("r", "x*", "low")).await,
        Err(IndexError::ArchivePolicyRuleAlreadyExists(n)) if n == "r"
    ));
}

#[tokio::test]
async fn rename_and_delete() {
    let (_dir, index) = indexer().await;
    index.create_archive_policy(&policy("low")).await.unwrap();
    index
        .create_archive_policy_rule(&rule("r1", "a*", "low"))
        .await
        .unwrap();
    index
        .create_archive_policy_rule(&rule("r2", "b*", "low"))
        .await
        .unwrap();

    assert!(matches!(
        index.rename_archive_policy_rule("r1", "r2").await,
        Err(IndexError::ArchivePolicyRuleAlreadyExists(n)) if n == "r2"
    ));
    assert!(matches!(
        index.rename_archive_policy_rule("nope", "r3").await,
        Err(IndexError::ArchivePolicyRuleNotFound(n)) if n == "nope"
    ));
    assert_eq!(
        index.rename_archive_policy_rule("r1", "r1").await.unwrap(),
        rule("r1", "a*", "low")
    );
    assert_eq!(
        index.rename_archive_policy_rule("r1", "r3").await.unwrap(),
        rule("r3", "a*", "low")
    );
    assert_eq!(index.get_archive_policy_rule("r1").await.unwrap(), None);

    index.delete_archive_policy_rule("r3").await.unwrap();
    assert!(matches!(
        index.delete_archive_policy_rule("r3").await,
        Err(IndexError::ArchivePolicyRuleNotFound(n)) if n == "r3"
    ));
    assert_eq!(
        index.list_archive_policy_rules().await.unwrap(),
        vec![rule("r2", "b*", "low")]
    );
}
