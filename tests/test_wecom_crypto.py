"""WXBizMsgCrypt against the vectors WeCom and WeChat publish with their sample code.

Sources (values copied verbatim, nothing recomputed here):
- WeCom's encryption doc and WXBizMsgCrypt samples (Sample.cs / Sample.py / Sample.php):
  token QDG6eK, EncodingAESKey jWmYm7qr…B2C, corp id wx5823bf96d3bd56c7, the URL
  verification (msg_signature 5c45ff5e…, echostr P9nAzCzy…) and the POST (477715d1…, RypEvHKD…).
- WeChat Official Account sample (Sample.py, WXBizMsgCryptTest.java): token spamtest / pamtest,
  EncodingAESKey abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG, a POST body (5d197aaf…, hyzAe4Oz…)
  and an encryption with the random string fixed to aaaabbbbccccdddd (jn1L23DB…).
- wechatpy's tests/test_crypto.py (WeCom traffic captured with token 123456): a URL
  verification, a POST, and an encrypted passive reply with the random string 1234567890123456.
"""

from __future__ import annotations

import base64
import hashlib
import struct

import pytest

from siyu.wecom import rules
from siyu.wecom.crypto import (
    MsgCrypt,
    ReceiverMismatch,
    SignatureMismatch,
    UndecryptableMessage,
    signature,
    valid_aes_key,
    valid_token,
)

WECOM_TOKEN = "QDG6eK"
WECOM_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
WECOM_CORP = "wx5823bf96d3bd56c7"
VERIFY = {
    "msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
    "timestamp": "1409659589",
    "nonce": "263014780",
    "echostr": "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==",
}
POST_SIGNATURE, POST_TIMESTAMP, POST_NONCE = "477715d11cdb4164915debcba66cb864d751f3e6", "1409659813", "1372623149"
POST_ENCRYPT = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/"
    "sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HM"
    "ZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB"
    "3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVK"
    "n28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q=="
)
POST_BODY = (
    f"<xml><ToUserName><![CDATA[{WECOM_CORP}]]></ToUserName><Encrypt><![CDATA[{POST_ENCRYPT}]]></Encrypt>"
    "<AgentID><![CDATA[218]]></AgentID></xml>"
)

OA_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
OA_ENCRYPT = (
    "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2L"
    "dJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6u"
    "x5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJ"
    "pXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQL"
    "Czpu9GhglF2PE="
)

WP_TOKEN, WP_KEY, WP_CORP = "123456", "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR", "wx49f0ab532d5d035a"
WP_ENCRYPT = (
    "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6Bv283d"
    "Gymzxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx410cvkKR2/nPwB"
    "iT+P4hIiOAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54S"
    "NdshoQgWYEvccTKe7FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91"
    "eBdCRxthuL0="
)
WP_REPLY = """<xml>
<MsgType><![CDATA[text]]></MsgType>
<Content><![CDATA[test]]></Content>
<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>
<ToUserName><![CDATA[messense]]></ToUserName>
<AgentID>1</AgentID>
<CreateTime>1411525903</CreateTime>
</xml>"""
WP_REPLY_ENCRYPTED = """<xml>
<Encrypt><![CDATA[9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGsL8GqxlhZgURnAtObvesEl5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSjPUL2Q1qvSUCUld+/WIXrx0oyKQmpB6o8NRrrNrsDf03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJvFurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O5oazPoQJz0nTYjxxEE8kv3kFxtAGVRe3ypD3WeK2XeFYFMNMpatF9XiKzHo3]]></Encrypt>
<MsgSignature><![CDATA[407518b7649e86ef23978113f92d27afa9296533]]></MsgSignature>
<TimeStamp>1411525903</TimeStamp>
<Nonce><![CDATA[461056294]]></Nonce>
</xml>"""


def wecom() -> MsgCrypt:
    return MsgCrypt(WECOM_TOKEN, WECOM_KEY, WECOM_CORP)


def test_wecom_sample_url_verification_answers_the_echo_plaintext():
    assert wecom().verify_url(**VERIFY) == "1616140317555161061"


def test_wecom_sample_post_signature_and_plaintext():
    assert signature(WECOM_TOKEN, POST_TIMESTAMP, POST_NONCE, POST_ENCRYPT) == POST_SIGNATURE
    outer = rules.parse_xml(POST_BODY.encode())
    plain = wecom().open(POST_SIGNATURE, POST_TIMESTAMP, POST_NONCE, outer["Encrypt"])
    message = rules.parse_xml(plain)
    assert message == {
        "ToUserName": WECOM_CORP,
        "FromUserName": "mycreate",
        "CreateTime": "1409659813",
        "MsgType": "text",
        "Content": "hello",
        "MsgId": "4561255354251345929",
        "AgentID": "218",
    }


def test_official_account_sample_post_decrypts_with_the_app_id():
    crypt = MsgCrypt("spamtest", OA_KEY, "wx2c2769f8efd9abc2")
    plain = crypt.open("5d197aaffba7e9b25a30732f161a50dee96bd5fa", "1409735669", "1320562132", OA_ENCRYPT)
    message = rules.parse_xml(plain)
    assert message["FromUserName"] == "oyORnuP8q7ou2gfYjqLzSIWZf0rs"
    assert message["Content"] == "abcdteT" and message["MsgId"] == "6054768590064713728"


def test_official_account_sample_encryption_with_fixed_random_is_bit_exact():
    crypt = MsgCrypt("pamtest", OA_KEY, "wxb11529c136998cb6", random=lambda n: b"aaaabbbbccccdddd")
    expected = "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg=="
    assert crypt.encrypt("我是中文abcd123") == expected


def test_wechatpy_captured_verification_and_post():
    crypt = MsgCrypt(WP_TOKEN, WP_KEY, WP_CORP)
    echo = "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q=="
    assert crypt.verify_url("dd6b9c95b495b3f7e2901bfbc76c664930ffdb96", "1411443780", "437374425", echo)
    with pytest.raises(SignatureMismatch):  # one digit of the nonce changed
        crypt.verify_url("dd6b9c95b495b3f7e2901bfbc76c664930ffdb96", "1411443780", "437374424", echo)
    plain = crypt.open("74d92dfeb87ba7c714f89d98870ae5eb62dff26d", "1411525903", "461056294", WP_ENCRYPT)
    message = rules.parse_xml(plain)
    assert message["Content"] == "test" and message["FromUserName"] == "messense"


def test_wechatpy_passive_reply_is_bit_exact():
    crypt = MsgCrypt(WP_TOKEN, WP_KEY, WP_CORP, random=lambda n: b"1234567890123456")
    assert crypt.encrypt_reply(WP_REPLY, nonce="461056294", timestamp="1411525903") == WP_REPLY_ENCRYPTED


def test_round_trip_pads_an_aligned_plaintext_with_a_whole_32_byte_block():
    crypt = MsgCrypt("tok", WECOM_KEY, WECOM_CORP, random=lambda n: b"r" * n)
    # 16 random + 4 length + 12 message + 18 corp id = 50 bytes -> padded to 64 with 14 x 0x0e;
    # a 46-byte message makes it 84 -> 96; a 26-byte one makes 64 exactly -> a full block of 0x20.
    for size, padded in ((12, 64), (26, 96), (46, 96)):
        message = "x" * size
        encrypted, sig, ts = crypt.seal(message, nonce="n1")
        raw = base64.b64decode(encrypted)
        assert len(raw) == padded
        assert crypt.open(sig, ts, "n1", encrypted) == message.encode()
    key = base64.b64decode(WECOM_KEY + "=")
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = decryptor.update(base64.b64decode(crypt.encrypt("x" * 26))) + decryptor.finalize()
    assert plain[-32:] == b"\x20" * 32
    assert struct.unpack(">I", plain[16:20]) == (26,)


def test_tampered_ciphertext_and_wrong_receiver_are_rejected():
    crypt = wecom()
    tampered = POST_ENCRYPT[:40] + ("A" if POST_ENCRYPT[40] != "A" else "B") + POST_ENCRYPT[41:]
    with pytest.raises(SignatureMismatch):
        crypt.open(POST_SIGNATURE, POST_TIMESTAMP, POST_NONCE, tampered)
    # Someone who knows the token but not the key can sign garbage; decryption still refuses it.
    garbage = base64.b64encode(b"\x01" * 64).decode()
    with pytest.raises(UndecryptableMessage):
        crypt.open(signature(WECOM_TOKEN, "1", "2", garbage), "1", "2", garbage)
    other = MsgCrypt(WECOM_TOKEN, WECOM_KEY, "ww_another_corp")
    with pytest.raises(ReceiverMismatch):
        other.open(POST_SIGNATURE, POST_TIMESTAMP, POST_NONCE, POST_ENCRYPT)


def test_signature_is_sha1_over_the_sorted_strings():
    expected = hashlib.sha1(b"".join(sorted([b"b", b"a", b"c", b"d"]))).hexdigest()
    assert signature("b", "a", "c", "d") == expected


def test_token_and_key_formats():
    assert valid_token("QDG6eK") and valid_token("a" * 32)
    assert not valid_token("a" * 33) and not valid_token("tok-en") and not valid_token("")
    assert valid_aes_key(WECOM_KEY)
    assert not valid_aes_key(WECOM_KEY[:-1]) and not valid_aes_key(WECOM_KEY[:-1] + "+")


def test_xml_with_a_doctype_or_entity_is_refused():
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><xml><A>&a;</A></xml>'
    with pytest.raises(rules.BadXml):
        rules.parse_xml(bomb)
    with pytest.raises(rules.BadXml):
        rules.parse_xml(b"<xml><A>unclosed</xml>")
