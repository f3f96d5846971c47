//! Resource types own real tables: attributes are added (with fills written into
//! current and history rows), updated and dropped on a type that has resources,
//! and a type in use cannot be deleted.

mod common;

use common::indexer;
use gnocchi_index::{
    AttrValue, AttributeKind, AttributeSchema, IndexError, NewResource, ResourceQuery,
    ResourceType, ResourceTypeState, ResourceTypeUpdate, ResourceUpdate,
};
use uuid::Uuid;

fn attr(name: &str, kind: AttributeKind, required: bool) -> AttributeSchema {
    AttributeSchema {
        name: name.into(),
        required,
        kind,
    }
}

#[tokio::test]
async fn attributes_change_on_a_type_with_resources() {
    let (_dir, index) = indexer().await;
    let rt = ResourceType {
        name: "host".into(),
        state: ResourceTypeState::Creating,
        attributes: vec![attr(
            "name",
            AttributeKind::String {
                min_length: 0,
                max_length: 255,
            },
            true,
        )],
        tablename: None,
    };
    let rt = index.create_resource_type(&rt).await.unwrap();
    assert_eq!(rt.state, ResourceTypeState::Active);
    assert!(matches!(
        index.create_resource_type(&rt).await,
        Err(IndexError::ResourceTypeAlreadyExists(_))
    ));

    let id = Uuid::new_v4();
    index
        .create_resource(&NewResource {
            id,
            resource_type: "host".into(),
            original_resource_id: "h1".into(),
            creator: None,
            user_id: None,
            project_id: None,
            started_at: None,
            ended_at: None,
            attributes: vec![("name".into(), AttrValue::String("a".into()))],
            metrics: vec![],
        })
        .await
        .unwrap();
    let rename = ResourceUpdate {
        attributes: vec![("name".into(), AttrValue::String("b".into()))],
        ..Default::default()
    };
    index.update_resource("host", id, &rename).await.unwrap();

    let update = ResourceTypeUpdate {
        add: vec![(
            attr(
                "size",
                AttributeKind::Number {
                    min: None,
                    max: None,
                },
                true,
            ),
            Some(AttrValue::Number(15.0)),
        )],
        update: vec![],
        remove: vec!["name".into()],
    };
    let rt = index.update_resource_type("host", &update).await.unwrap();
    assert_eq!(rt.attributes.len(), 1);

    let mut q = ResourceQuery::new("host");
    q.history = true;
    let rows = index.list_resources(&q).await.unwrap();
    assert_eq!(rows.len(), 2);
    for r in &rows {
        assert_eq!(r.attributes, vec![("size".into(), AttrValue::Number(15.0))]);
    }

    assert!(matches!(
        index.delete_resource_type("host").await,
        Err(IndexError::ResourceTypeInUse(_))
    ));
    index.delete_resource(id).await.unwrap();
    index.delete_resource_type("host").await.unwrap();
    assert!(index.get_resource_type("host").await.unwrap().is_none());
    assert!(matches!(
        index.delete_resource_type("generic").await,
        Err(IndexError::ResourceTypeInUse(_))
    ));
}
