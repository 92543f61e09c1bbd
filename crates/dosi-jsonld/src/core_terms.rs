//! The term list of the NGSI-LD core `@context` (ETSI GS CIM 009, annex B),
//! versions 1.8 and 1.9, as data. The served documents are generated from it
//! (see [`crate::core`]), so the broker needs no copy of the published files.

/// Which core-context versions contain a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Versions {
    /// Both 1.8 and 1.9.
    All,
    /// Only 1.8 (changed or dropped in 1.9).
    V1_8,
    /// Only 1.9 (added or changed in 1.9).
    V1_9,
}

/// A term's definition as written in the core context.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Spec {
    /// `"term": "iri"`.
    Iri(&'static str),
    /// `"term": {"@id": .., "@type": .., "@container": .., "@context": ..}`.
    Full {
        id: &'static str,
        type_: Option<&'static str>,
        container: Option<&'static str>,
        /// A scoped context as JSON text.
        context: Option<&'static str>,
    },
}

/// `@vocab` of both versions.
pub(crate) const VOCAB: &str = "https://uri.etsi.org/ngsi-ld/default-context/";

/// The rows in the order the documents list them.
pub(crate) const TERMS: &[(&str, Versions, Spec)] = &[
    (
        "ngsi-ld",
        Versions::All,
        Spec::Iri("https://uri.etsi.org/ngsi-ld/"),
    ),
    (
        "geojson",
        Versions::All,
        Spec::Iri("https://purl.org/geojson/vocab#"),
    ),
    ("id", Versions::All, Spec::Iri("@id")),
    ("type", Versions::All, Spec::Iri("@type")),
    ("Attribute", Versions::All, Spec::Iri("ngsi-ld:Attribute")),
    (
        "AttributeList",
        Versions::All,
        Spec::Iri("ngsi-ld:AttributeList"),
    ),
    (
        "ContextSourceIdentity",
        Versions::All,
        Spec::Iri("ngsi-ld:ContextSourceIdentity"),
    ),
    (
        "ContextSourceNotification",
        Versions::All,
        Spec::Iri("ngsi-ld:ContextSourceNotification"),
    ),
    (
        "ContextSourceRegistration",
        Versions::All,
        Spec::Iri("ngsi-ld:ContextSourceRegistration"),
    ),
    ("Date", Versions::All, Spec::Iri("ngsi-ld:Date")),
    ("DateTime", Versions::All, Spec::Iri("ngsi-ld:DateTime")),
    ("EntityMap", Versions::V1_9, Spec::Iri("ngsi-ld:EntityMap")),
    ("EntityType", Versions::All, Spec::Iri("ngsi-ld:EntityType")),
    (
        "EntityTypeInfo",
        Versions::All,
        Spec::Iri("ngsi-ld:EntityTypeInfo"),
    ),
    (
        "EntityTypeList",
        Versions::All,
        Spec::Iri("ngsi-ld:EntityTypeList"),
    ),
    (
        "ExecutionResultDetails",
        Versions::V1_9,
        Spec::Iri("ngsi-ld:ExecutionResultDetails"),
    ),
    ("Feature", Versions::All, Spec::Iri("geojson:Feature")),
    (
        "FeatureCollection",
        Versions::All,
        Spec::Iri("geojson:FeatureCollection"),
    ),
    (
        "GeoProperty",
        Versions::All,
        Spec::Iri("ngsi-ld:GeoProperty"),
    ),
    (
        "GeometryCollection",
        Versions::All,
        Spec::Iri("geojson:GeometryCollection"),
    ),
    (
        "JsonProperty",
        Versions::All,
        Spec::Iri("ngsi-ld:JsonProperty"),
    ),
    (
        "LanguageProperty",
        Versions::All,
        Spec::Iri("ngsi-ld:LanguageProperty"),
    ),
    ("LineString", Versions::All, Spec::Iri("geojson:LineString")),
    (
        "ListProperty",
        Versions::All,
        Spec::Iri("ngsi-ld:ListProperty"),
    ),
    (
        "ListRelationship",
        Versions::All,
        Spec::Iri("ngsi-ld:ListRelationship"),
    ),
    (
        "MultiLineString",
        Versions::All,
        Spec::Iri("geojson:MultiLineString"),
    ),
    ("MultiPoint", Versions::All, Spec::Iri("geojson:MultiPoint")),
    (
        "MultiPolygon",
        Versions::All,
        Spec::Iri("geojson:MultiPolygon"),
    ),
    (
        "Notification",
        Versions::All,
        Spec::Iri("ngsi-ld:Notification"),
    ),
    ("Point", Versions::All, Spec::Iri("geojson:Point")),
    ("Polygon", Versions::All, Spec::Iri("geojson:Polygon")),
    ("Property", Versions::All, Spec::Iri("ngsi-ld:Property")),
    (
        "Relationship",
        Versions::All,
        Spec::Iri("ngsi-ld:Relationship"),
    ),
    ("Snapshot", Versions::V1_9, Spec::Iri("ngsi-ld:Snapshot")),
    (
        "SnapshotNotification",
        Versions::V1_9,
        Spec::Iri("ngsi-ld:SnapshotNotification"),
    ),
    (
        "Subscription",
        Versions::All,
        Spec::Iri("ngsi-ld:Subscription"),
    ),
    (
        "TemporalProperty",
        Versions::All,
        Spec::Iri("ngsi-ld:TemporalProperty"),
    ),
    ("Time", Versions::All, Spec::Iri("ngsi-ld:Time")),
    (
        "VocabProperty",
        Versions::All,
        Spec::Iri("ngsi-ld:VocabProperty"),
    ),
    ("accept", Versions::All, Spec::Iri("ngsi-ld:accept")),
    (
        "aggrParams",
        Versions::V1_9,
        Spec::Iri("ngsi-ld:aggrParams"),
    ),
    (
        "aggrMethods",
        Versions::V1_9,
        Spec::Iri("ngsi-ld:aggrMethods"),
    ),
    (
        "aggrPeriodDuration",
        Versions::V1_9,
        Spec::Iri("ngsi-ld:aggrPeriodDuration"),
    ),
    (
        "attributeCount",
        Versions::V1_8,
        Spec::Iri("attributeCount"),
    ),
    (
        "attributeCount",
        Versions::V1_9,
        Spec::Iri("ngsi-ld:attributeCount"),
    ),
    (
        "attributeDetails",
        Versions::V1_8,
        Spec::Iri("attributeDetails"),
    ),
    (
        "attributeDetails",
        Versions::V1_9,
        Spec::Iri("ngsi-ld:attributeDetails"),
    ),
    (
        "attributeList",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:attributeList",
            type_: Some("@vocab"),
            container: None,
            context: None,
        },
    ),
    (
        "attributeName",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:attributeName",
            type_: Some("@vocab"),
            container: None,
            context: None,
        },
    ),
    (
        "attributeNames",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:attributeNames",
            type_: Some("@vocab"),
            container: None,
            context: None,
        },
    ),
    (
        "attributeTypes",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:attributeTypes",
            type_: Some("@vocab"),
            container: None,
            context: None,
        },
    ),
    (
        "attributes",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:attributes",
            type_: Some("@vocab"),
            container: None,
            context: None,
        },
    ),
    ("attrs", Versions::All, Spec::Iri("ngsi-ld:attrs")),
    (
        "avg",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:avg",
            type_: None,
            container: Some("@list"),
            context: None,
        },
    ),
    (
        "bbox",
        Versions::All,
        Spec::Full {
            id: "geojson:bbox",
            type_: None,
            container: Some("@list"),
            context: None,
        },
    ),
    (
        "cacheDuration",
        Versions::All,
        Spec::Iri("ngsi-ld:cacheDuration"),
    ),
    ("collation", Versions::V1_9, Spec::Iri("ngsi-ld:collation")),
    (
        "containedBy",
        Versions::All,
        Spec::Iri("ngsi-ld:isContainedBy"),
    ),
    (
        "contextSourceAlias",
        Versions::All,
        Spec::Iri("ngsi-ld:contextSourceAlias"),
    ),
    (
        "contextSourceExtras",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:contextSourceExtras",
            type_: Some("@json"),
            container: None,
            context: None,
        },
    ),
    (
        "contextSourceInfo",
        Versions::All,
        Spec::Iri("ngsi-ld:contextSourceInfo"),
    ),
    (
        "contextSourceTimeAt",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:contextSourceTimeAt",
            type_: Some("DateTime"),
            container: None,
            context: None,
        },
    ),
    (
        "contextSourceUptime",
        Versions::All,
        Spec::Iri("ngsi-ld:contextSourceUptime"),
    ),
    ("cooldown", Versions::All, Spec::Iri("ngsi-ld:cooldown")),
    (
        "coordinates",
        Versions::All,
        Spec::Full {
            id: "geojson:coordinates",
            type_: None,
            container: Some("@list"),
            context: None,
        },
    ),
    (
        "createdAt",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:createdAt",
            type_: Some("DateTime"),
            container: None,
            context: None,
        },
    ),
    ("csf", Versions::All, Spec::Iri("ngsi-ld:csf")),
    ("data", Versions::All, Spec::Iri("ngsi-ld:data")),
    (
        "dataset",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:hasDataset",
            type_: None,
            container: Some("@index"),
            context: None,
        },
    ),
    (
        "datasetId",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:datasetId",
            type_: Some("@id"),
            container: None,
            context: None,
        },
    ),
    (
        "deletedAt",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:deletedAt",
            type_: Some("DateTime"),
            container: None,
            context: None,
        },
    ),
    (
        "description",
        Versions::All,
        Spec::Iri("http://purl.org/dc/terms/description"),
    ),
    ("detail", Versions::All, Spec::Iri("ngsi-ld:detail")),
    (
        "distinctCount",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:distinctCount",
            type_: None,
            container: Some("@list"),
            context: None,
        },
    ),
    (
        "endAt",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:endAt",
            type_: Some("DateTime"),
            container: None,
            context: None,
        },
    ),
    (
        "endTimeAt",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:endTimeAt",
            type_: Some("DateTime"),
            container: None,
            context: None,
        },
    ),
    ("endpoint", Versions::All, Spec::Iri("ngsi-ld:endpoint")),
    ("entities", Versions::All, Spec::Iri("ngsi-ld:entities")),
    ("entity", Versions::All, Spec::Iri("ngsi-ld:entity")),
    (
        "entityCount",
        Versions::All,
        Spec::Iri("ngsi-ld:entityCount"),
    ),
    (
        "entityId",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:entityId",
            type_: Some("@id"),
            container: None,
            context: None,
        },
    ),
    (
        "entityList",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:entityList",
            type_: None,
            container: Some("@list"),
            context: None,
        },
    ),
    (
        "entityMap",
        Versions::V1_8,
        Spec::Iri("ngsi-ld:hasEntityMap"),
    ),
    (
        "entityMap",
        Versions::V1_9,
        Spec::Full {
            id: "ngsi-ld:hasEntityMap",
            type_: None,
            container: Some("@index"),
            context: None,
        },
    ),
    (
        "entityMapLifetime",
        Versions::V1_9,
        Spec::Iri("ngsi-ld:hasEntityMapLifetime"),
    ),
    ("error", Versions::All, Spec::Iri("ngsi-ld:error")),
    ("errors", Versions::All, Spec::Iri("ngsi-ld:errors")),
    (
        "expandValues",
        Versions::V1_9,
        Spec::Iri("ngsi-ld:expandValues"),
    ),
    (
        "expiresAt",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:expiresAt",
            type_: Some("DateTime"),
            container: None,
            context: None,
        },
    ),
    (
        "features",
        Versions::All,
        Spec::Full {
            id: "geojson:features",
            type_: None,
            container: Some("@set"),
            context: None,
        },
    ),
    ("format", Versions::All, Spec::Iri("ngsi-ld:format")),
    ("geoQ", Versions::All, Spec::Iri("ngsi-ld:geoQ")),
    ("geometry", Versions::All, Spec::Iri("geojson:geometry")),
    (
        "geoproperty",
        Versions::All,
        Spec::Iri("ngsi-ld:geoproperty"),
    ),
    ("georel", Versions::All, Spec::Iri("ngsi-ld:georel")),
    ("idPattern", Versions::All, Spec::Iri("ngsi-ld:idPattern")),
    (
        "information",
        Versions::All,
        Spec::Iri("ngsi-ld:information"),
    ),
    (
        "instanceId",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:instanceId",
            type_: Some("@id"),
            container: None,
            context: None,
        },
    ),
    ("isActive", Versions::All, Spec::Iri("ngsi-ld:isActive")),
    ("join", Versions::All, Spec::Iri("ngsi-ld:join")),
    (
        "joinLevel",
        Versions::All,
        Spec::Iri("ngsi-ld:hasJoinLevel"),
    ),
    (
        "json",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:hasJSON",
            type_: Some("@json"),
            container: None,
            context: None,
        },
    ),
    ("jsonKeys", Versions::All, Spec::Iri("ngsi-ld:jsonKeys")),
    (
        "jsonldContext",
        Versions::V1_9,
        Spec::Iri("ngsi-ld:jsonldContext"),
    ),
    (
        "jsons",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:jsons",
            type_: None,
            container: Some("@list"),
            context: None,
        },
    ),
    ("key", Versions::All, Spec::Iri("ngsi-ld:hasKey")),
    ("lang", Versions::All, Spec::Iri("ngsi-ld:lang")),
    (
        "languageMap",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:hasLanguageMap",
            type_: None,
            container: Some("@language"),
            context: None,
        },
    ),
    (
        "languageMaps",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:hasLanguageMaps",
            type_: None,
            container: Some("@list"),
            context: None,
        },
    ),
    (
        "langString",
        Versions::V1_9,
        Spec::Iri("http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"),
    ),
    (
        "lastFailure",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:lastFailure",
            type_: Some("DateTime"),
            container: None,
            context: None,
        },
    ),
    ("lastN", Versions::V1_9, Spec::Iri("ngsi-ld:lastN")),
    (
        "lastNotification",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:lastNotification",
            type_: Some("DateTime"),
            container: None,
            context: None,
        },
    ),
    (
        "lastSuccess",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:lastSuccess",
            type_: Some("DateTime"),
            container: None,
            context: None,
        },
    ),
    (
        "lastUsedAt",
        Versions::V1_9,
        Spec::Full {
            id: "ngsi-ld:lastUsedAt",
            type_: Some("DateTime"),
            container: None,
            context: None,
        },
    ),
    ("linkedMaps", Versions::All, Spec::Iri("ngsi-ld:linkedMaps")),
    ("localOnly", Versions::All, Spec::Iri("ngsi-ld:localOnly")),
    ("location", Versions::All, Spec::Iri("ngsi-ld:location")),
    ("management", Versions::All, Spec::Iri("ngsi-ld:management")),
    (
        "managementInterval",
        Versions::All,
        Spec::Iri("ngsi-ld:managementInterval"),
    ),
    (
        "max",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:max",
            type_: None,
            container: Some("@list"),
            context: None,
        },
    ),
    (
        "min",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:min",
            type_: None,
            container: Some("@list"),
            context: None,
        },
    ),
    ("mode", Versions::All, Spec::Iri("ngsi-ld:mode")),
    (
        "modifiedAt",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:modifiedAt",
            type_: Some("DateTime"),
            container: None,
            context: None,
        },
    ),
    (
        "ngsildproof",
        Versions::V1_9,
        Spec::Full {
            id: "ngsi-ld:ngsildproof",
            type_: None,
            container: None,
            context: Some(
                r#"[{"entityIdSealed":"ngsi-ld:entityIdSealed","entityTypeSealed":{"@id":"ngsi-ld:entityTypeSealed","@type":"@vocab"}},"https://w3id.org/security/data-integrity/v2"]"#,
            ),
        },
    ),
    (
        "ngsildConformance",
        Versions::V1_9,
        Spec::Iri("ngsi-ld:ngsildConformance"),
    ),
    (
        "notification",
        Versions::All,
        Spec::Iri("ngsi-ld:notification"),
    ),
    (
        "notificationTrigger",
        Versions::All,
        Spec::Iri("ngsi-ld:notificationTrigger"),
    ),
    (
        "notifiedAt",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:notifiedAt",
            type_: Some("DateTime"),
            container: None,
            context: None,
        },
    ),
    (
        "notifierInfo",
        Versions::All,
        Spec::Iri("ngsi-ld:notifierInfo"),
    ),
    ("notUpdated", Versions::All, Spec::Iri("ngsi-ld:notUpdated")),
    (
        "object",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:hasObject",
            type_: Some("@id"),
            container: None,
            context: None,
        },
    ),
    (
        "objectList",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:hasObjectList",
            type_: None,
            container: Some("@list"),
            context: None,
        },
    ),
    (
        "objectLists",
        Versions::V1_9,
        Spec::Full {
            id: "ngsi-ld:hasObjectLists",
            type_: None,
            container: Some("@list"),
            context: None,
        },
    ),
    (
        "objects",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:hasObjects",
            type_: None,
            container: Some("@list"),
            context: None,
        },
    ),
    (
        "objectType",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:hasObjectType",
            type_: Some("@vocab"),
            container: None,
            context: None,
        },
    ),
    (
        "observationInterval",
        Versions::All,
        Spec::Iri("ngsi-ld:observationInterval"),
    ),
    (
        "observationSpace",
        Versions::All,
        Spec::Iri("ngsi-ld:observationSpace"),
    ),
    (
        "observedAt",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:observedAt",
            type_: Some("DateTime"),
            container: None,
            context: None,
        },
    ),
    ("omit", Versions::All, Spec::Iri("ngsi-ld:omit")),
    ("operations", Versions::All, Spec::Iri("ngsi-ld:operations")),
    (
        "operationSpace",
        Versions::All,
        Spec::Iri("ngsi-ld:operationSpace"),
    ),
    (
        "orderBy",
        Versions::V1_9,
        Spec::Full {
            id: "ngsi-ld:orderBy",
            type_: None,
            container: Some("@list"),
            context: None,
        },
    ),
    ("ordering", Versions::V1_9, Spec::Iri("ngsi-ld:ordering")),
    ("pick", Versions::All, Spec::Iri("ngsi-ld:pick")),
    (
        "previousJson",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:hasPreviousJson",
            type_: Some("@json"),
            container: None,
            context: None,
        },
    ),
    (
        "previousLanguageMap",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:hasPreviousLanguageMap",
            type_: None,
            container: Some("@language"),
            context: None,
        },
    ),
    (
        "previousObject",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:hasPreviousObject",
            type_: Some("@id"),
            container: None,
            context: None,
        },
    ),
    (
        "previousObjectList",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:hasPreviousObjectList",
            type_: None,
            container: Some("@list"),
            context: None,
        },
    ),
    (
        "previousValue",
        Versions::All,
        Spec::Iri("ngsi-ld:hasPreviousValue"),
    ),
    (
        "previousValueList",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:hasPreviousValueList",
            type_: None,
            container: Some("@list"),
            context: None,
        },
    ),
    (
        "previousVocab",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:hasPreviousVocab",
            type_: Some("@vocab"),
            container: None,
            context: None,
        },
    ),
    (
        "problemDetails",
        Versions::V1_9,
        Spec::Full {
            id: "ngsi-ld:problemDetails",
            type_: Some("@json"),
            container: None,
            context: None,
        },
    ),
    ("properties", Versions::All, Spec::Iri("geojson:properties")),
    (
        "propertyNames",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:propertyNames",
            type_: Some("@vocab"),
            container: None,
            context: None,
        },
    ),
    ("q", Versions::All, Spec::Iri("ngsi-ld:q")),
    ("reason", Versions::All, Spec::Iri("ngsi-ld:reason")),
    (
        "receiverInfo",
        Versions::All,
        Spec::Iri("ngsi-ld:receiverInfo"),
    ),
    (
        "refreshRate",
        Versions::All,
        Spec::Iri("ngsi-ld:refreshRate"),
    ),
    (
        "registrationId",
        Versions::All,
        Spec::Iri("ngsi-ld:registrationId"),
    ),
    (
        "registrationName",
        Versions::All,
        Spec::Iri("ngsi-ld:registrationName"),
    ),
    (
        "relationshipNames",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:relationshipNames",
            type_: Some("@vocab"),
            container: None,
            context: None,
        },
    ),
    (
        "resultStatus",
        Versions::V1_9,
        Spec::Iri("ngsi-ld:resultStatus"),
    ),
    ("scope", Versions::All, Spec::Iri("ngsi-ld:scope")),
    ("scopeQ", Versions::All, Spec::Iri("ngsi-ld:scopeQ")),
    (
        "showChanges",
        Versions::All,
        Spec::Iri("ngsi-ld:showChanges"),
    ),
    (
        "snapshotId",
        Versions::V1_9,
        Spec::Iri("ngsi-ld:snapshotId"),
    ),
    (
        "snapshotLifetime",
        Versions::V1_9,
        Spec::Iri("ngsi-ld:snapshotLifetime"),
    ),
    (
        "snapshotPriority",
        Versions::V1_9,
        Spec::Iri("ngsi-ld:snapshotPriority"),
    ),
    (
        "snapshotQueries",
        Versions::V1_9,
        Spec::Full {
            id: "ngsi-ld:snapshotQueries",
            type_: None,
            container: Some("@list"),
            context: None,
        },
    ),
    (
        "snapshotQueriesDetails",
        Versions::V1_9,
        Spec::Full {
            id: "ngsi-ld:snapshotQueriesDetails",
            type_: None,
            container: Some("@list"),
            context: None,
        },
    ),
    (
        "snapshotStatus",
        Versions::V1_9,
        Spec::Iri("ngsi-ld:snapshotStatus"),
    ),
    (
        "snapshotTemporalQueries",
        Versions::V1_9,
        Spec::Full {
            id: "ngsi-ld:snapshotTemporalQueries",
            type_: None,
            container: Some("@list"),
            context: None,
        },
    ),
    (
        "snapshotTemporalQueriesDetails",
        Versions::V1_9,
        Spec::Full {
            id: "ngsi-ld:snapshotTemporalQueriesDetails",
            type_: None,
            container: Some("@list"),
            context: None,
        },
    ),
    (
        "splitEntities",
        Versions::V1_9,
        Spec::Iri("ngsi-ld:hasSplitEntities"),
    ),
    (
        "startAt",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:startAt",
            type_: Some("DateTime"),
            container: None,
            context: None,
        },
    ),
    ("status", Versions::All, Spec::Iri("ngsi-ld:status")),
    (
        "stddev",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:stddev",
            type_: None,
            container: Some("@list"),
            context: None,
        },
    ),
    (
        "subscriptionId",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:subscriptionId",
            type_: Some("@id"),
            container: None,
            context: None,
        },
    ),
    (
        "subscriptionName",
        Versions::All,
        Spec::Iri("ngsi-ld:subscriptionName"),
    ),
    (
        "success",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:success",
            type_: Some("@id"),
            container: None,
            context: None,
        },
    ),
    (
        "sum",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:sum",
            type_: None,
            container: Some("@list"),
            context: None,
        },
    ),
    (
        "sumsq",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:sumsq",
            type_: None,
            container: Some("@list"),
            context: None,
        },
    ),
    ("sysAttrs", Versions::All, Spec::Iri("ngsi-ld:sysAttrs")),
    ("temporalQ", Versions::All, Spec::Iri("ngsi-ld:temporalQ")),
    (
        "tenant",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:tenant",
            type_: Some("@id"),
            container: None,
            context: None,
        },
    ),
    ("throttling", Versions::All, Spec::Iri("ngsi-ld:throttling")),
    (
        "timeAt",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:timeAt",
            type_: Some("DateTime"),
            container: None,
            context: None,
        },
    ),
    (
        "timeInterval",
        Versions::All,
        Spec::Iri("ngsi-ld:timeInterval"),
    ),
    ("timeout", Versions::All, Spec::Iri("ngsi-ld:timeout")),
    (
        "timeproperty",
        Versions::All,
        Spec::Iri("ngsi-ld:timeproperty"),
    ),
    ("timerel", Versions::All, Spec::Iri("ngsi-ld:timerel")),
    (
        "timesFailed",
        Versions::All,
        Spec::Iri("ngsi-ld:timesFailed"),
    ),
    ("timesSent", Versions::All, Spec::Iri("ngsi-ld:timesSent")),
    (
        "title",
        Versions::All,
        Spec::Iri("http://purl.org/dc/terms/title"),
    ),
    (
        "totalCount",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:totalCount",
            type_: None,
            container: Some("@list"),
            context: None,
        },
    ),
    (
        "triggerReason",
        Versions::All,
        Spec::Iri("ngsi-ld:triggerReason"),
    ),
    (
        "typeList",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:typeList",
            type_: Some("@vocab"),
            container: None,
            context: None,
        },
    ),
    (
        "typeName",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:typeName",
            type_: Some("@vocab"),
            container: None,
            context: None,
        },
    ),
    (
        "typeNames",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:typeNames",
            type_: Some("@vocab"),
            container: None,
            context: None,
        },
    ),
    ("unchanged", Versions::All, Spec::Iri("ngsi-ld:unchanged")),
    ("unitCode", Versions::All, Spec::Iri("ngsi-ld:unitCode")),
    ("updated", Versions::All, Spec::Iri("ngsi-ld:updated")),
    ("uri", Versions::All, Spec::Iri("ngsi-ld:uri")),
    ("value", Versions::All, Spec::Iri("ngsi-ld:hasValue")),
    (
        "valueList",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:hasValueList",
            type_: None,
            container: Some("@list"),
            context: None,
        },
    ),
    (
        "valueLists",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:hasValueLists",
            type_: None,
            container: Some("@list"),
            context: None,
        },
    ),
    (
        "values",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:hasValues",
            type_: None,
            container: Some("@list"),
            context: None,
        },
    ),
    (
        "valueType",
        Versions::V1_9,
        Spec::Full {
            id: "ngsi-ld:hasValueType",
            type_: Some("@vocab"),
            container: None,
            context: None,
        },
    ),
    (
        "vocab",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:hasVocab",
            type_: Some("@vocab"),
            container: None,
            context: None,
        },
    ),
    (
        "vocabs",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:hasVocabs",
            type_: None,
            container: Some("@list"),
            context: None,
        },
    ),
    (
        "watchedAttributes",
        Versions::All,
        Spec::Full {
            id: "ngsi-ld:watchedAttributes",
            type_: Some("@vocab"),
            container: None,
            context: None,
        },
    ),
    (
        "objectsLists",
        Versions::V1_8,
        Spec::Full {
            id: "ngsi-ld:hasObjectsLists",
            type_: None,
            container: Some("@list"),
            context: None,
        },
    ),
];
