use super::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

const NOW: u64 = 1_800_000_000; // 2027-01-15

struct Pki {
    ca_der: Vec<u8>,
    ca: Issuer<'static, KeyPair>,
}

fn at(secs: u64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(secs as i64).unwrap()
}

fn pki(cn: &str) -> Pki {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.not_before = at(NOW - 86_400);
    p.not_after = at(NOW + 365 * 86_400);
    let cert = p.self_signed(&key).unwrap();
    Pki {
        ca_der: cert.der().to_vec(),
        ca: Issuer::new(p, key),
    }
}

/// An end-entity certificate (DER) and its PKCS#8 key, valid until `until`.
fn leaf(pki: &Pki, cn: &str, dns: &[&str], until: u64) -> (Vec<u8>, Vec<u8>) {
    let key = KeyPair::generate().unwrap();
    let mut p =
        CertificateParams::new(dns.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.not_before = at(NOW - 3600);
    p.not_after = at(until);
    let cert = p.signed_by(&key, &pki.ca).unwrap();
    (cert.der().to_vec(), key.serialize_der())
}

fn id(c: &LocalCert) -> IdPayload {
    c.identity().to_payload()
}

#[test]
fn signatures_verify_in_both_forms() {
    let p = pki("vnet test CA");
    let (der, key) = leaf(&p, "gw", &["gw.example"], NOW + 86_400);
    let me = LocalCert::new(vec![der.clone()], &key).unwrap();
    let trust = TrustAnchors::new(vec![p.ca_der.clone()]).unwrap();
    let octets = b"RealMessage1 | NonceRData | MACedIDForI";
    for rfc7427 in [true, false] {
        let (m, data) = me.sign(octets, rfc7427).unwrap();
        assert_eq!(m, if rfc7427 { 14 } else { 9 });
        if !rfc7427 {
            assert_eq!(data.len(), 64, "RFC 4754: r and s, 32 bytes each");
        }
        trust
            .verify(
                std::slice::from_ref(&der),
                &id(&me),
                (m, &data),
                octets,
                NOW,
            )
            .unwrap();
        // Tampering with the signed octets or the signature is refused.
        assert!(trust
            .verify(
                std::slice::from_ref(&der),
                &id(&me),
                (m, &data),
                b"other octets",
                NOW
            )
            .is_err());
        let mut bad = data.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(trust
            .verify(std::slice::from_ref(&der), &id(&me), (m, &bad), octets, NOW)
            .is_err());
    }
}

#[test]
fn the_peer_must_chain_to_a_trusted_ca_within_validity() {
    let p = pki("vnet test CA");
    let other = pki("someone else");
    let (der, key) = leaf(&p, "gw", &[], NOW + 86_400);
    let me = LocalCert::new(vec![der.clone()], &key).unwrap();
    let (m, data) = me.sign(b"x", true).unwrap();
    let theirs = TrustAnchors::new(vec![other.ca_der.clone()]).unwrap();
    let e = theirs
        .verify(std::slice::from_ref(&der), &id(&me), (m, &data), b"x", NOW)
        .unwrap_err();
    assert!(e.contains("not trusted"), "{e}");
    let ours = TrustAnchors::new(vec![other.ca_der.clone(), p.ca_der.clone()]).unwrap();
    ours.verify(std::slice::from_ref(&der), &id(&me), (m, &data), b"x", NOW)
        .unwrap();
    let e = ours
        .verify(
            std::slice::from_ref(&der),
            &id(&me),
            (m, &data),
            b"x",
            NOW + 2 * 86_400,
        )
        .unwrap_err();
    assert!(e.contains("not trusted"), "expired: {e}");
    assert!(ours.verify(&[], &id(&me), (m, &data), b"x", NOW).is_err());
    // A pre-shared-key AUTH where a certificate is required.
    let e = ours
        .verify(&[der], &id(&me), (2, &[0u8; 32]), b"x", NOW)
        .unwrap_err();
    assert!(e.contains("pre-shared key"), "{e}");
}

#[test]
fn the_identity_must_name_the_certificate() {
    let p = pki("vnet test CA");
    let (der, key) = leaf(&p, "gw", &["gw.example", "198.18.0.9"], NOW + 86_400);
    let me = LocalCert::new(vec![der.clone()], &key).unwrap();
    let trust = TrustAnchors::new(vec![p.ca_der.clone()]).unwrap();
    let (m, data) = me.sign(b"x", true).unwrap();
    let check = |id: Identity| {
        trust.verify(
            std::slice::from_ref(&der),
            &id.to_payload(),
            (m, &data),
            b"x",
            NOW,
        )
    };
    check(me.identity()).unwrap();
    check(Identity::Fqdn("gw.example".into())).unwrap();
    check(Identity::Addr("198.18.0.9".parse().unwrap())).unwrap();
    assert!(check(Identity::Fqdn("other.example".into())).is_err());
    assert!(check(Identity::Addr("198.18.0.10".parse().unwrap())).is_err());
    let (other_der, other_key) = leaf(&p, "not gw", &[], NOW + 86_400);
    let other = LocalCert::new(vec![other_der], &other_key).unwrap();
    assert!(check(other.identity()).is_err(), "another subject");
    assert!(check(Identity::Email("gw@example".into())).is_err());
}

#[test]
fn a_key_that_is_not_the_certificates_is_refused() {
    let p = pki("vnet test CA");
    let (der, _) = leaf(&p, "gw", &[], NOW + 86_400);
    let (_, other_key) = leaf(&p, "gw2", &[], NOW + 86_400);
    let e = LocalCert::new(vec![der], &other_key).unwrap_err();
    assert!(e.contains("does not match"), "{e}");
    assert!(LocalCert::new(vec![], &other_key).is_err());
    assert!(LocalCert::new(vec![vec![0x30, 0x00]], &other_key).is_err());
}

#[test]
fn certreq_holds_the_sha1_of_each_ca_key() {
    let a = pki("a");
    let b = pki("b");
    let t = TrustAnchors::new(vec![a.ca_der.clone(), b.ca_der.clone()]).unwrap();
    assert_eq!(t.certreq().len(), 40);
    let ee = CertificateDer::from(a.ca_der.as_slice());
    let cert = webpki::EndEntityCert::try_from(&ee).unwrap();
    let h = digest::digest(
        &digest::SHA1_FOR_LEGACY_USE_ONLY,
        cert.subject_public_key_info().as_ref(),
    );
    assert_eq!(&t.certreq()[..20], h.as_ref());
}

/// RFC 7427 Appendix A: the AlgorithmIdentifier encodings, byte for byte.
#[test]
fn rfc7427_algorithm_identifiers() {
    let hex = |s: &str| {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect::<Vec<u8>>()
    };
    assert_eq!(alg_id::ECDSA_SHA256, hex("300a06082a8648ce3d040302"));
    assert_eq!(alg_id::ECDSA_SHA384, hex("300a06082a8648ce3d040303"));
    assert_eq!(alg_id::ECDSA_SHA512, hex("300a06082a8648ce3d040304"));
    assert_eq!(alg_id::RSA_SHA256, hex("300d06092a864886f70d01010b0500"));
    assert_eq!(alg_id::RSA_SHA384, hex("300d06092a864886f70d01010c0500"));
    assert_eq!(alg_id::RSA_SHA512, hex("300d06092a864886f70d01010d0500"));
}

#[test]
fn ecdsa_signature_forms_convert_both_ways() {
    for (r, s) in [
        ([0x80u8; 32], [0x01u8; 32]),
        ([0u8; 32], [0x7f; 32]),
        (
            {
                let mut x = [0u8; 32];
                x[31] = 5;
                x
            },
            [0xff; 32],
        ),
    ] {
        let mut fixed = r.to_vec();
        fixed.extend_from_slice(&s);
        let der = fixed_to_der(&fixed, 32).unwrap();
        assert_eq!(der_to_fixed(&der, 32).unwrap(), fixed);
    }
    assert!(fixed_to_der(&[0; 63], 32).is_none());
    assert!(der_to_fixed(&[0x30, 0x03, 0x02, 0x01], 32).is_none());
    assert_eq!(der_sequence(&[0u8; 200])[..3], [0x30, 0x81, 200]);
    assert_eq!(der_sequence(&[0u8; 300])[..4], [0x30, 0x82, 0x01, 0x2c]);
}

#[test]
fn distinguished_names_compare_as_text_not_as_bytes() {
    // O=vnet, CN=gw as PrintableString (OpenSSL) and as UTF8String (strongSwan's id = ...).
    let dn = |tag: u8, o: &str, cn: &str| {
        let atv = |oid: &[u8], v: &str| {
            let mut b = vec![0x06, oid.len() as u8];
            b.extend_from_slice(oid);
            b.push(tag);
            b.push(v.len() as u8);
            b.extend_from_slice(v.as_bytes());
            let mut set = vec![0x31, (b.len() + 2) as u8, 0x30, b.len() as u8];
            set.extend_from_slice(&b);
            set
        };
        let mut body = atv(&[0x55, 0x04, 0x0a], o);
        body.extend(atv(&[0x55, 0x04, 0x03], cn));
        der_sequence(&body)
    };
    assert!(dn_equal(&dn(0x13, "vnet", "gw"), &dn(0x0c, "vnet", "gw")));
    assert!(dn_equal(&dn(0x13, "vnet", "GW"), &dn(0x0c, "vnet", "gw")));
    assert!(dn_equal(
        &dn(0x13, "vnet", "a  b"),
        &dn(0x0c, "vnet", "a b")
    ));
    assert!(!dn_equal(&dn(0x13, "vnet", "gw"), &dn(0x13, "vnet", "gw2")));
    assert!(!dn_equal(&dn(0x13, "vnet", "gw"), &dn(0x13, "gw", "vnet")));
    assert!(!dn_equal(&dn(0x13, "vnet", "gw"), &[0x30, 0x00]));
}

#[test]
fn distinguished_names_as_text() {
    let dn = dn_from_str("O=vnet, CN=gw.example").unwrap();
    assert_eq!(dn_to_string(&dn).unwrap(), "O=vnet, CN=gw.example");
    assert_eq!(
        Identity::parse("O=vnet, CN=gw.example"),
        Identity::Dn(dn.clone())
    );
    assert_eq!(Identity::Dn(dn).to_string(), "O=vnet, CN=gw.example");
    let p = pki("vnet test CA");
    let (der, key) = leaf(&p, "gw", &[], NOW + 86_400);
    let me = LocalCert::new(vec![der], &key).unwrap();
    // rcgen's encoding of CN=gw and ours of the same text are the same name.
    assert_eq!(me.identity(), Identity::parse("CN=gw"));
    assert_ne!(me.identity(), Identity::parse("CN=gw2"));
    assert!(dn_from_str("XX=1").is_none());
    assert!(dn_from_str("no equals").is_none());
}

/// The DER walkers read what peers send (ID payloads, AUTH data): arbitrary bytes never
/// make them panic.
#[test]
fn der_walkers_survive_arbitrary_bytes() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let valid = dn_from_str("C=NL, O=vnet, CN=gw").unwrap();
    for i in 0..20_000 {
        let mut b: Vec<u8> = if i % 2 == 0 {
            valid.clone()
        } else {
            (0..(next() % 80)).map(|_| next() as u8).collect()
        };
        for _ in 0..(next() % 4) {
            if !b.is_empty() {
                let at = (next() as usize) % b.len();
                b[at] = next() as u8;
            }
        }
        let _ = dn_to_string(&b);
        let _ = dn_equal(&b, &valid);
        let _ = der_to_fixed(&b, 32);
        let _ = fixed_to_der(&b, (b.len() / 2).max(1));
        let _ = Identity::Dn(b.clone()).to_string();
    }
}
