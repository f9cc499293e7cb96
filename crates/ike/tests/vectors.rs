//! Published test vectors for the IKEv2 key schedule.

use ike::crypto::{prf, prf_plus, skeyseed, skeyseed_rekey};
use ike::Prf;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

// NIST CAVP SP 800-135 "CVL IKEv2" known-answer test (HMAC-SHA-1, Ni|Nr 128 bits,
// g^ir 1024 bits, DKM 1056 bits): SKEYSEED, DKM = prf+(SKEYSEED, Ni|Nr|SPIi|SPIr),
// Child SA DKM = prf+(SK_d, Ni|Nr) and prf+(SK_d, g^ir(new)|Ni|Nr), rekey SKEYSEED.
const NI_NR: &str = "3651fef5c9c35e93c09a8b90a3f04d59";
const SPIS: &str = "8e5c3ae507221684b1f201bb155c3acd";
const GIR: &str = "d084a30166a50fb7325c3960874a839449ef9741c2f4f947d0201dd8c1269273
    d79509f37e3ca3eb4fa2fe2a28254e289cd3f34dad4eb4df1a07685a4b8a94fa61e2491f7598b3ce
    65547ff133b3f63d1ac4175eaa695033f3cedb026a6873a36455172a8540b8a5d23a0143bed0390e
    e49b168269d75fffee9fb62be965993c";
const GIR_NEW: &str = "52f00ab174c25d5b7139ae5ff4e8e9eddee5992d2e36adf8a559ffd90dab1442
    e4fbe429d320c0f33552a17d1557fa41ea70e8fb916c4fa27ed52b5f8ebd8461afa78f1159159a64
    055ac5f6319e29c28eae58cbc6847770f32c3fed1d04750484f854790f95e9ec01bc5bc461f24966
    462e35951132930503 8e94deb6dd42c2";
const SKEYSEED: &str = "cd2e8050137832245f1dbacc6e4f0a92f94d45d6";
const DKM: &str = "6f1b12cad3cbe097b35430356d869d54cddb0198ec859174d53ceb92dddedbe2
    436db69f60977c58fa63bbb667f8d36920b109baae8f6c61a9ac49feda01843225d080ec5539d588
    1a25521ffb2a0a91874a9c0a27fcc2d717eb8963a9e3a89c7ab264757284c28cf8c3ca40576f4220
    b052b1fb8e9ad60ba3c80557323331a8cbb89f20";
const DKM_SA: &str = "4727dc0ef94eb326ce131cf282fb652faa638ad0ddae3786a11bcc0309876009
    f8c485de011ad962c5b1ca8a41ff8145445749079c5686e26ffebbc342f06981f3da745e11ca0976
    424d1f8caec623d59dc7186deb20a27b411d1dcb70a365440bf7de905088b0692e8addc094e18d19
    39bdb67e89798ca6b239e2ccb81c2409dac0106c";
const DKM_SA_DH: &str = "b109c21ad4c0797768c1cec9e63554681e48f224bca7f23c20c4ea7041983451
    e9aa1d5408656c8a975ff1b9d9a12c75ffeb64bdecb30174664cccb4e14f1c377b7f6d1525af77c7
    092aac3e47f917ebae8297fb5539d2008ce830823a09cc197361d4a289c72745f6ce9fefe812be5b
    f55b3200fbb82e41a4a40877d3fe106db909707b";
const SKEYSEED_REKEY: &str = "3b03bce748c96d5e8306918d2ff89b68f0648da3";

#[test]
fn cavp_ikev2_kdf_sha1() {
    let ninr = hex(NI_NR);
    let (ni, nr) = ninr.split_at(8);
    let seed = skeyseed(Prf::HmacSha1, ni, nr, &hex(GIR));
    assert_eq!(&seed[..], &hex(SKEYSEED)[..]);

    let mut s = ninr.clone();
    s.extend_from_slice(&hex(SPIS));
    let dkm = prf_plus(Prf::HmacSha1, &seed, &s, 132);
    assert_eq!(&dkm[..], &hex(DKM)[..]);

    let sk_d = &dkm[..20];
    let dkm_sa = prf_plus(Prf::HmacSha1, sk_d, &ninr, 132);
    assert_eq!(&dkm_sa[..], &hex(DKM_SA)[..]);

    let mut s = hex(GIR_NEW);
    s.extend_from_slice(&ninr);
    let dkm_sa_dh = prf_plus(Prf::HmacSha1, sk_d, &s, 132);
    assert_eq!(&dkm_sa_dh[..], &hex(DKM_SA_DH)[..]);

    let rekey = skeyseed_rekey(Prf::HmacSha1, sk_d, &hex(GIR_NEW), ni, nr);
    assert_eq!(&rekey[..], &hex(SKEYSEED_REKEY)[..]);
}

// RFC 4868 §2.7.1 (= RFC 4231 test case 1): PRF_HMAC_SHA2_256/384/512.
#[test]
fn rfc4868_prf_vectors() {
    let key = [0x0bu8; 20];
    let data = b"Hi There";
    assert_eq!(
        &prf(Prf::HmacSha256, &key, &[data])[..],
        &hex("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")[..]
    );
    assert_eq!(
        &prf(Prf::HmacSha384, &key, &[data])[..],
        &hex(
            "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c
              faea9ea9076ede7f4af152e8b2fa9cb6"
        )[..]
    );
    assert_eq!(
        &prf(Prf::HmacSha512, &key, &[data])[..],
        &hex(
            "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde
              daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"
        )[..]
    );
    // RFC 2202 test case 1 (HMAC-SHA-1).
    assert_eq!(
        &prf(Prf::HmacSha1, &key, &[data])[..],
        &hex("b617318655057264e28bc0b6fb378c8ef146be00")[..]
    );
}
