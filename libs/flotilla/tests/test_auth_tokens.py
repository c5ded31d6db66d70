"""Access tokens and keys, without IO: what is issued, what verifies, and what is refused.

Forged tokens are assembled by hand with :func:`forgery.craft_token` rather than with PyJWT's
encoder, so a test can build exactly the header and signature an attacker would send.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from flotilla.auth import (
    SIGNING_ALGORITHM,
    InvalidKey,
    InvalidToken,
    KeysUnavailable,
    NotAUser,
    SigningKey,
    StaticKeys,
    TokenVerifier,
    issue_access_token,
    jwks_document,
    load_public_keys,
    public_jwk,
    public_pem,
    verification_keys,
)

from .forgery import (
    AUDIENCE,
    ISSUER,
    ago,
    b64url,
    craft_token,
    header_for,
    hmac_signer,
    valid_claims,
)

LIFETIME = timedelta(minutes=15)

# RFC 8037, appendix A.1 and A.3: an Ed25519 private key and the thumbprint of its public JWK.
RFC_8037_PRIVATE_KEY = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
RFC_8037_PUBLIC_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC_8037_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


@pytest.fixture
def signing_key() -> SigningKey:
    """The issuer's current key."""
    return SigningKey.generate()


@pytest.fixture
def verifier(signing_key: SigningKey) -> TokenVerifier:
    """A verifier that trusts only ``signing_key``."""
    keys = StaticKeys(verification_keys([signing_key.public_key]))
    return TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE)


def rejection(verifier: TokenVerifier, token: str) -> str:
    """The description of why ``verifier`` refuses ``token``; fails if it accepts it."""
    with pytest.raises(InvalidToken) as raised:
        verifier.verify(token)
    return raised.value.description


# Keys


def test_a_kid_is_the_rfc_7638_thumbprint_of_the_public_key() -> None:
    raw = base64.urlsafe_b64decode(RFC_8037_PRIVATE_KEY + "=")
    key = SigningKey.from_private_key(Ed25519PrivateKey.from_private_bytes(raw))
    assert key.kid == RFC_8037_THUMBPRINT
    assert public_jwk(key.public_key) == {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": RFC_8037_PUBLIC_X,
        "kid": RFC_8037_THUMBPRINT,
        "alg": "EdDSA",
        "use": "sig",
    }


def test_the_kid_of_a_key_is_the_same_after_a_round_trip_through_pem(
    signing_key: SigningKey,
) -> None:
    reloaded = SigningKey.from_pem(signing_key.private_pem())
    assert reloaded.kid == signing_key.kid
    assert SigningKey.generate().kid != signing_key.kid


def test_a_private_pem_with_escaped_newlines_is_read(signing_key: SigningKey) -> None:
    escaped = signing_key.private_pem().replace("\n", "\\n")
    assert "\n" not in escaped
    assert SigningKey.from_pem(escaped).kid == signing_key.kid


def test_a_signing_key_that_is_not_pem_is_refused() -> None:
    with pytest.raises(InvalidKey, match="not a PEM private key"):
        SigningKey.from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")


def test_a_signing_key_that_is_not_ed25519_is_refused() -> None:
    pem = ec_private_pem()
    with pytest.raises(InvalidKey, match="Ed25519"):
        SigningKey.from_pem(pem)


def ec_private_pem() -> str:
    """A fresh EC P-256 private key as PKCS#8 PEM: a valid key of the wrong kind."""
    return (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode("ascii")
    )


def test_public_keys_are_read_from_several_blocks_with_escaped_newlines() -> None:
    first, second = SigningKey.generate(), SigningKey.generate()
    text = (public_pem(first.public_key) + public_pem(second.public_key)).replace("\n", "\\n")
    keys = load_public_keys(f'"{text}"')
    assert [public_pem(key) for key in keys] == [
        public_pem(first.public_key),
        public_pem(second.public_key),
    ]


def test_a_private_key_among_public_keys_counts_as_its_public_half() -> None:
    first, second = SigningKey.generate(), SigningKey.generate()
    keys = load_public_keys(public_pem(first.public_key) + "\n" + second.private_pem())
    assert list(verification_keys(keys)) == [first.kid, second.kid]


def test_no_public_keys_configured_is_an_empty_list() -> None:
    assert load_public_keys("") == []
    assert load_public_keys("  \n ") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not a key", "no PEM block found"),
        ("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----", "unreadable PEM block"),
    ],
)
def test_public_keys_that_cannot_be_read_are_refused(text: str, message: str) -> None:
    with pytest.raises(InvalidKey, match=message):
        load_public_keys(text)


def test_public_keys_that_are_not_ed25519_are_refused() -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_public = ec_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    good = public_pem(SigningKey.generate().public_key)
    with pytest.raises(InvalidKey, match="must be Ed25519"):
        load_public_keys(good + ec_public.decode("ascii"))
    with pytest.raises(InvalidKey, match="must be Ed25519"):
        load_public_keys(ec_private_pem())


def test_a_jwks_document_publishes_every_key_as_a_usable_jwk() -> None:
    keys = [SigningKey.generate(), SigningKey.generate()]
    document = jwks_document(key.public_key for key in keys)
    assert [entry["kid"] for entry in document["keys"]] == [key.kid for key in keys]
    for entry in document["keys"]:
        assert "d" not in entry  # never the private half
        assert jwt.PyJWK(entry).algorithm_name == SIGNING_ALGORITHM


# Issuing


def test_an_issued_token_carries_kid_type_and_the_claims_of_an_access_token(
    signing_key: SigningKey,
) -> None:
    now = datetime(2030, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)
    token = issue_access_token(
        signing_key,
        subject="7",
        roles={"customer", "admin"},
        issuer=ISSUER,
        audience=AUDIENCE,
        lifetime=LIFETIME,
        session_id="family-1",
        now=now,
    )
    assert jwt.get_unverified_header(token) == {
        "alg": "EdDSA",
        "typ": "at+jwt",
        "kid": signing_key.kid,
    }
    claims = jwt.decode(token, options={"verify_signature": False})
    issued = int(now.replace(microsecond=0).timestamp())
    assert claims["iat"] == issued
    assert claims["exp"] == issued + 900
    assert (claims["iss"], claims["aud"], claims["sub"]) == (ISSUER, AUDIENCE, "7")
    assert claims["roles"] == ["admin", "customer"]
    assert claims["sid"] == "family-1"
    assert len(claims["jti"]) == 32


def test_each_token_has_its_own_id_and_no_session_unless_given(signing_key: SigningKey) -> None:
    tokens = [
        issue_access_token(
            signing_key,
            subject="1",
            roles=[],
            issuer=ISSUER,
            audience=AUDIENCE,
            lifetime=LIFETIME,
        )
        for _ in range(2)
    ]
    claims = [jwt.decode(token, options={"verify_signature": False}) for token in tokens]
    assert claims[0]["jti"] != claims[1]["jti"]
    assert "sid" not in claims[0]


# Verifying


def test_an_issued_token_verifies_to_its_principal(
    signing_key: SigningKey, verifier: TokenVerifier
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    token = issue_access_token(
        signing_key,
        subject="7",
        roles=["customer"],
        issuer=ISSUER,
        audience=AUDIENCE,
        lifetime=LIFETIME,
        session_id="family-1",
        now=now,
    )
    principal = verifier.verify(token)
    assert principal.user_id == 7
    assert principal.roles == frozenset({"customer"})
    assert principal.session_id == "family-1"
    assert principal.token_id == principal.claims["jti"]
    assert principal.issued_at == now
    assert principal.expires_at == now + LIFETIME


def test_a_services_token_keeps_its_name_and_speaks_for_no_user(
    signing_key: SigningKey, verifier: TokenVerifier
) -> None:
    token = issue_access_token(
        signing_key,
        subject="orders",
        roles=["service"],
        issuer=ISSUER,
        audience=AUDIENCE,
        lifetime=LIFETIME,
        client_id="orders",
    )
    principal = verifier.verify(token)
    assert (principal.subject, principal.client_id) == ("orders", "orders")
    with pytest.raises(NotAUser):
        _ = principal.user_id


def test_roles_allow_when_none_are_required_or_one_is_held(
    signing_key: SigningKey, verifier: TokenVerifier
) -> None:
    token = craft_token(header_for(signing_key), valid_claims(), signing_key.private_key.sign)
    principal = verifier.verify(token)
    assert principal.has_any_role(())
    assert principal.has_any_role(["admin", "customer"])
    assert not principal.has_any_role(["admin"])


def test_a_token_without_roles_has_none(signing_key: SigningKey, verifier: TokenVerifier) -> None:
    token = craft_token(
        header_for(signing_key), valid_claims(roles=None, jti=None), signing_key.private_key.sign
    )
    principal = verifier.verify(token)
    assert principal.roles == frozenset()
    assert principal.token_id is None
    assert not principal.has_any_role(["customer"])


def test_the_typ_may_be_spelled_as_a_full_media_type(
    signing_key: SigningKey, verifier: TokenVerifier
) -> None:
    header = header_for(signing_key, typ="application/AT+JWT")
    token = craft_token(header, valid_claims(), signing_key.private_key.sign)
    assert verifier.verify(token).user_id == 1


def test_a_token_signed_with_a_retired_key_verifies_while_that_key_is_trusted() -> None:
    retired, active = SigningKey.generate(), SigningKey.generate()
    keys = StaticKeys(verification_keys([active.public_key, retired.public_key]))
    verifier = TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE)
    for key in (retired, active):
        token = craft_token(
            header_for(key), valid_claims(sub=key.kid, client_id=key.kid), key.private_key.sign
        )
        assert verifier.verify(token).subject == key.kid


def test_clock_skew_within_the_leeway_is_tolerated(
    signing_key: SigningKey, verifier: TokenVerifier
) -> None:
    now = int(datetime.now(UTC).timestamp())
    claims = valid_claims(iat=now - 905, exp=now - 5)  # expired 5 s ago; leeway is 10 s
    token = craft_token(header_for(signing_key), claims, signing_key.private_key.sign)
    assert verifier.verify(token).user_id == 1
    strict = TokenVerifier(verifier.keys, issuer=ISSUER, audience=AUDIENCE, leeway=timedelta(0))
    assert rejection(strict, token) == "The token has expired."


def claims_rejection(signing_key: SigningKey, verifier: TokenVerifier, **overrides: Any) -> str:
    """Why ``verifier`` refuses a well-signed token whose claims have ``overrides``."""
    claims = valid_claims(**overrides)
    return rejection(
        verifier, craft_token(header_for(signing_key), claims, signing_key.private_key.sign)
    )


@pytest.mark.parametrize(
    ("overrides", "description"),
    [
        ({"iat": ago(3600), "exp": ago(2700)}, "The token has expired."),
        ({"iat": ago(-3600), "exp": ago(-4500)}, "The token is not valid yet."),
        ({"nbf": ago(-3600)}, "The token is not valid yet."),
        ({"aud": "billing"}, "The token is not meant for this service."),
        ({"aud": ["billing", "orders"]}, "The token is not meant for this service."),
        ({"iss": "urn:evil:users"}, "The token was issued by an unknown issuer."),
        ({"iss": "urn:flotilla"}, "The token was issued by an unknown issuer."),
        ({"iss": f"{ISSUER}:x"}, "The token was issued by an unknown issuer."),
        ({"exp": None}, "The token lacks a required claim."),
        ({"iat": None}, "The token lacks a required claim."),
        ({"sub": None}, "The token lacks a required claim."),
        ({"aud": None}, "The token lacks a required claim."),
        ({"iss": None}, "The token lacks a required claim."),
        ({"sub": ""}, "The token's subject is malformed."),
        ({"sub": "user-1"}, "The token's subject is malformed."),
        ({"sub": "0"}, "The token's subject is malformed."),
        ({"sub": "9223372036854775808"}, "The token's subject is malformed."),
        ({"roles": "admin"}, "The token's roles are malformed."),
        ({"roles": ["admin", 1]}, "The token's roles are malformed."),
        ({"exp": "tomorrow"}, "The token is malformed."),
    ],
    ids=[
        "expired",
        "iat-in-the-future",
        "nbf-in-the-future",
        "wrong-aud",
        "wrong-aud-list",
        "wrong-iss",
        "iss-prefix",
        "iss-extended",
        "no-exp",
        "no-iat",
        "no-sub",
        "no-aud",
        "no-iss",
        "empty-sub",
        "sub-not-a-user-id",
        "sub-zero",
        "sub-beyond-bigint",
        "roles-string",
        "roles-not-strings",
        "exp-not-a-number",
    ],
)
def test_a_well_signed_token_with_bad_claims_is_refused(
    signing_key: SigningKey,
    verifier: TokenVerifier,
    overrides: dict[str, Any],
    description: str,
) -> None:
    assert claims_rejection(signing_key, verifier, **overrides) == description


def test_an_audience_list_naming_this_service_is_accepted(
    signing_key: SigningKey, verifier: TokenVerifier
) -> None:
    token = craft_token(
        header_for(signing_key),
        valid_claims(aud=["billing", AUDIENCE]),
        signing_key.private_key.sign,
    )
    assert verifier.verify(token).user_id == 1


def test_a_token_signed_by_another_key_claiming_the_trusted_kid_is_refused(
    signing_key: SigningKey, verifier: TokenVerifier
) -> None:
    impostor = SigningKey.generate()
    token = craft_token(header_for(signing_key), valid_claims(), impostor.private_key.sign)
    assert rejection(verifier, token) == "The token signature is invalid."


def test_a_token_signed_by_an_unknown_key_is_refused(verifier: TokenVerifier) -> None:
    stranger = SigningKey.generate()
    token = craft_token(header_for(stranger), valid_claims(), stranger.private_key.sign)
    assert rejection(verifier, token) == "The token is signed with an unknown key."


def test_a_token_whose_claims_were_altered_after_signing_is_refused(
    signing_key: SigningKey, verifier: TokenVerifier
) -> None:
    token = craft_token(header_for(signing_key), valid_claims(), signing_key.private_key.sign)
    header, _, signature = token.split(".")
    promoted = b64url(orjson.dumps(valid_claims(roles=["admin"])))
    assert rejection(verifier, f"{header}.{promoted}.{signature}") == (
        "The token signature is invalid."
    )


def test_an_unsigned_token_is_refused(signing_key: SigningKey, verifier: TokenVerifier) -> None:
    for alg in ("none", "None", "NONE"):
        token = craft_token(header_for(signing_key, alg=alg), valid_claims(), lambda _: b"")
        assert rejection(verifier, token) == "The token is signed with an unexpected algorithm."


def test_an_hmac_token_keyed_with_the_public_key_is_refused(
    signing_key: SigningKey, verifier: TokenVerifier
) -> None:
    """The classic algorithm confusion: HS256 with the (public) verification key as secret."""
    public_bytes = public_pem(signing_key.public_key).encode("ascii")
    raw_public = signing_key.public_key.public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    for secret in (public_bytes, raw_public):
        token = craft_token(
            header_for(signing_key, alg="HS256"),
            valid_claims(),
            hmac_signer(secret),
        )
        assert rejection(verifier, token) == "The token is signed with an unexpected algorithm."


def test_the_header_algorithm_must_be_the_algorithm_of_the_key_it_names() -> None:
    """A key set holding a shared-secret key must not let an "EdDSA" token be HMAC-signed."""
    secret = b"a shared secret that ended up in a key set"
    oct_key = jwt.PyJWK({"kty": "oct", "k": b64url(secret), "kid": "shared"})
    verifier = TokenVerifier(StaticKeys({"shared": oct_key}), issuer=ISSUER, audience=AUDIENCE)
    token = craft_token(
        {"alg": "EdDSA", "typ": "at+jwt", "kid": "shared"},
        valid_claims(),
        hmac_signer(secret),
    )
    assert rejection(verifier, token) == "The token is signed with an unexpected algorithm."


@pytest.mark.parametrize(
    ("header", "description"),
    [
        ({"typ": "JWT"}, "The token is not an access token."),
        ({"typ": None}, "The token is not an access token."),
        ({"typ": "id+jwt"}, "The token is not an access token."),
        ({"kid": None}, "The token names no key."),
        ({"kid": ""}, "The token names no key."),
        ({"alg": "ES256"}, "The token is signed with an unexpected algorithm."),
        ({"alg": "RS256"}, "The token is signed with an unexpected algorithm."),
        ({"alg": None}, "The token is signed with an unexpected algorithm."),
    ],
    ids=["typ-jwt", "no-typ", "typ-id", "no-kid", "empty-kid", "es256", "rs256", "no-alg"],
)
def test_a_token_with_a_bad_header_is_refused(
    signing_key: SigningKey,
    verifier: TokenVerifier,
    header: dict[str, Any],
    description: str,
) -> None:
    token = craft_token(
        header_for(signing_key, **header), valid_claims(), signing_key.private_key.sign
    )
    assert rejection(verifier, token) == description


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "a.b",
        "a.b.c",
        "a.b.c.d.e",
        "...",
        f"{b64url(b'[1]')}.{b64url(b'{}')}.",
        f"{b64url(b'{not json')}.{b64url(b'{}')}.AAAA",
    ],
)
def test_a_malformed_token_is_refused(verifier: TokenVerifier, token: str) -> None:
    assert rejection(verifier, token) == "The token is malformed."


def test_a_token_with_a_payload_that_is_not_json_is_refused(
    signing_key: SigningKey, verifier: TokenVerifier
) -> None:
    signing_input = f"{b64url(orjson.dumps(header_for(signing_key)))}.{b64url(b'not json')}"
    signature = b64url(signing_key.private_key.sign(signing_input.encode("ascii")))
    assert rejection(verifier, f"{signing_input}.{signature}") == "The token is malformed."


def test_unavailable_keys_are_not_the_token_s_fault(signing_key: SigningKey) -> None:
    class UnreachableKeys:
        def key_for(self, kid: str) -> jwt.PyJWK | None:
            raise KeysUnavailable(f"cannot fetch {kid}")

    verifier = TokenVerifier(UnreachableKeys(), issuer=ISSUER, audience=AUDIENCE)
    token = craft_token(header_for(signing_key), valid_claims(), signing_key.private_key.sign)
    with pytest.raises(KeysUnavailable, match=signing_key.kid):
        verifier.verify(token)
