//! Per-device credentials: an access token (HTTP), an MQTT username and
//! password, an optional TLS client-certificate fingerprint.
//!
//! Nothing secret is kept in clear: passwords are stored as Argon2id PHC
//! strings (RFC 9106 parameters of the `argon2` crate's default, or a hash the
//! operator provisions as is, e.g. migrated from another system), tokens as
//! their SHA-256 digest (they are 256 random bits, so a fast digest is
//! enough and lets a token be looked up), certificate fingerprints as
//! lowercase hex SHA-256 of the DER certificate.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a device authenticates with. Stored beside the device, never returned
/// by the IoT Agent API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceCredentials {
    /// SHA-256 (lowercase hex) of the device's access token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_sha256: Option<String>,
    /// The MQTT username (unique across services: CONNECT carries no tenant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mqtt_username: Option<String>,
    /// The MQTT password as an Argon2 PHC string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mqtt_password_hash: Option<String>,
    /// SHA-256 fingerprint (lowercase hex) of the device's client certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_sha256: Option<String>,
}

/// Who a device is, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeviceIdentity {
    /// `fiware-service` (the NGSI-LD tenant).
    pub service: String,
    /// The device id.
    pub device_id: String,
    /// The API key of its service group (its topics' first level).
    pub apikey: Option<String>,
}

/// A credential that cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// A password hash that is not an Argon2 PHC string.
    #[error("password hash is not an Argon2 PHC string ($argon2id$v=19$m=…): {0}")]
    BadHash(String),
    /// A fingerprint that is not 32 bytes of hex.
    #[error("certificate fingerprint must be a SHA-256 digest: 64 hex digits, colons allowed")]
    BadFingerprint,
    /// An empty or over-long password.
    #[error("password must be 1 to 1024 bytes")]
    BadPassword,
}

/// Hashes a password with Argon2id and a random salt (PHC string).
pub fn hash_password(password: &str) -> Result<String, CredentialError> {
    if password.is_empty() || password.len() > 1024 {
        return Err(CredentialError::BadPassword);
    }
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|e| CredentialError::BadHash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| CredentialError::BadHash(e.to_string()))
}

/// Checks that `phc` is an Argon2 PHC string (for hashes provisioned as is).
pub fn check_hash(phc: &str) -> Result<(), CredentialError> {
    let h = PasswordHash::new(phc).map_err(|e| CredentialError::BadHash(e.to_string()))?;
    if !h.algorithm.as_str().starts_with("argon2") {
        return Err(CredentialError::BadHash(format!(
            "algorithm {} is not argon2",
            h.algorithm
        )));
    }
    Ok(())
}

/// Whether `password` matches the PHC string `phc` (constant-time compare
/// inside the verifier). A malformed hash matches nothing.
pub fn verify_password(phc: &str, password: &[u8]) -> bool {
    match PasswordHash::new(phc) {
        Ok(h) => Argon2::default().verify_password(password, &h).is_ok(),
        Err(_) => false,
    }
}

/// A new access token: 256 random bits, lowercase hex.
pub fn new_token() -> String {
    hex(&rand::random::<[u8; 32]>())
}

/// The stored form of a token (SHA-256, lowercase hex).
pub fn token_digest(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// SHA-256 of `bytes`, lowercase hex (for DER certificates).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// A certificate fingerprint as stored: lowercase hex without separators.
/// Accepts `AB:CD:…` (openssl's `-fingerprint -sha256` output) and plain hex.
pub fn normalize_fingerprint(s: &str) -> Result<String, CredentialError> {
    let s = s.trim();
    let s = s
        .strip_prefix("sha256:")
        .or_else(|| s.strip_prefix("SHA256:"))
        .unwrap_or(s);
    let hexs: String = s.chars().filter(|c| *c != ':').collect();
    if hexs.len() != 64 || !hexs.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(CredentialError::BadFingerprint);
    }
    Ok(hexs.to_ascii_lowercase())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_round_trip() {
        let h = hash_password("s3cret").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        check_hash(&h).unwrap();
        assert!(verify_password(&h, b"s3cret"));
        assert!(!verify_password(&h, b"s3cret "));
        assert!(!verify_password("not a hash", b"s3cret"));
        assert_eq!(hash_password(""), Err(CredentialError::BadPassword));
    }

    #[test]
    fn provisioned_hash_must_be_argon2() {
        assert!(check_hash("$pbkdf2-sha256$i=1000$c2FsdA$aGFzaA").is_err());
        assert!(check_hash("plain").is_err());
    }

    #[test]
    fn tokens_and_fingerprints() {
        let t = new_token();
        assert_eq!(t.len(), 64);
        assert_ne!(t, new_token());
        assert_eq!(
            token_digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let f = "BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD";
        assert_eq!(normalize_fingerprint(f).unwrap(), token_digest("abc"));
        assert_eq!(
            normalize_fingerprint("zz"),
            Err(CredentialError::BadFingerprint)
        );
    }
}
