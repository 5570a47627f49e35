"""Signature vectors published by the providers, reproduced bit-exactly.

* Aliyun: the SendSms example of the Dysmsapi "签名机制" page (AccessKeyId ``testId``,
  secret ``testSecret``) and the DescribeRegions example of the generic RPC signature page.
* Tencent: the CVM DescribeInstances example of "Signature v3" (API 3.0), with its
  intermediate hashes (payload, canonical request) as printed in the document.
"""

from __future__ import annotations

import hashlib

from siyu.channels.sms.signing import (
    aliyun_signature,
    aliyun_string_to_sign,
    percent_encode,
    tc3_authorization,
    tc3_canonical_request,
    tc3_signature,
    tc3_string_to_sign,
)

ALIYUN_SEND_SMS_EXAMPLE = {
    "AccessKeyId": "testId",
    "Action": "SendSms",
    "Format": "XML",
    "OutId": "123",
    "PhoneNumbers": "15300000001",
    "RegionId": "cn-hangzhou",
    "SignName": "阿里云短信测试专用",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
    "SignatureVersion": "1.0",
    "TemplateCode": "SMS_71390007",
    "TemplateParam": '{"customer":"test"}',
    "Timestamp": "2017-07-12T02:42:19Z",
    "Version": "2017-05-25",
}


def test_aliyun_send_sms_doc_example_string_to_sign_and_signature():
    expected_sts = (
        "GET&%2F&AccessKeyId%3DtestId%26Action%3DSendSms%26Format%3DXML%26OutId%3D123%26PhoneNumbers%3D15300000001"
        "%26RegionId%3Dcn-hangzhou%26SignName%3D%25E9%2598%25BF%25E9%2587%258C%25E4%25BA%2591%25E7%259F%25AD%25E4"
        "%25BF%25A1%25E6%25B5%258B%25E8%25AF%2595%25E4%25B8%2593%25E7%2594%25A8%26SignatureMethod%3DHMAC-SHA1"
        "%26SignatureNonce%3D45e25e9b-0a6f-4070-8c85-2956eda1b466%26SignatureVersion%3D1.0%26TemplateCode"
        "%3DSMS_71390007%26TemplateParam%3D%257B%2522customer%2522%253A%2522test%2522%257D%26Timestamp"
        "%3D2017-07-12T02%253A42%253A19Z%26Version%3D2017-05-25"
    )
    assert aliyun_string_to_sign("GET", ALIYUN_SEND_SMS_EXAMPLE) == expected_sts
    assert aliyun_signature("GET", ALIYUN_SEND_SMS_EXAMPLE, "testSecret") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="


def test_aliyun_rpc_doc_example_describe_regions():
    params = {
        "Format": "XML",
        "AccessKeyId": "testid",
        "Action": "DescribeRegions",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
        "SignatureVersion": "1.0",
        "Version": "2014-05-26",
        "Timestamp": "2016-02-23T12:46:24Z",
    }
    assert aliyun_signature("GET", params, "testsecret") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


def test_aliyun_signature_ignores_a_signature_param_and_depends_on_method_and_secret():
    signed = dict(ALIYUN_SEND_SMS_EXAMPLE, Signature="zJDF+Lrzhj/ThnlvIToysFRq6t4=")
    assert aliyun_signature("GET", signed, "testSecret") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    assert aliyun_signature("POST", signed, "testSecret") != "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    assert aliyun_signature("GET", signed, "otherSecret") != "zJDF+Lrzhj/ThnlvIToysFRq6t4="


def test_aliyun_percent_encoding_keeps_only_unreserved_characters():
    assert percent_encode("a b*~-_.") == "a%20b%2A~-_."
    assert percent_encode("/=&+") == "%2F%3D%26%2B"
    assert percent_encode("退订") == "%E9%80%80%E8%AE%A2"


TENCENT_PAYLOAD = b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'


def test_tencent_tc3_doc_example_intermediate_hashes_and_signature():
    assert hashlib.sha256(TENCENT_PAYLOAD).hexdigest() == (
        "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
    )
    canonical = tc3_canonical_request(
        TENCENT_PAYLOAD, host="cvm.tencentcloudapi.com", content_type="application/json; charset=utf-8"
    )
    assert canonical == (
        "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\n"
        "content-type;host\n35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
    )
    string_to_sign = tc3_string_to_sign(canonical, timestamp=1551113065, service="cvm")
    assert string_to_sign == (
        "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n"
        "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
    )
    signature = tc3_signature(
        "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", date="2019-02-25", service="cvm", string_to_sign=string_to_sign
    )
    assert signature == "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"


def test_tencent_authorization_header_uses_the_utc_date_of_the_timestamp():
    header = tc3_authorization(
        secret_id="AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
        secret_key="Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
        service="cvm",
        host="cvm.tencentcloudapi.com",
        content_type="application/json; charset=utf-8",
        payload=TENCENT_PAYLOAD,
        timestamp=1551113065,  # 2019-02-26 00:44 in Beijing, still the 25th in UTC
    )
    assert header == (
        "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, "
        "SignedHeaders=content-type;host, "
        "Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
    )
