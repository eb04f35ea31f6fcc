import base64

import pytest

from synth.kernel.urls import redact_text, redact_url, redact_values, split_credentials


@pytest.mark.parametrize("url, clean", [
    ("http://user:pw@host:8000/v1", "http://host:8000/v1"),
    ("https://user@host/v1", "https://host/v1"),
    ("http://u%40x:p%3Aw@127.0.0.1/v1?x=1", "http://127.0.0.1/v1?x=1"),
    ("http://a:b@[::1]:9000/v1", "http://[::1]:9000/v1"),
    ("http://host/v1", "http://host/v1"),
])
def test_redact_url_removes_the_credentials_and_keeps_the_rest(url, clean):
    assert redact_url(url) == clean


def test_credentials_become_a_basic_header_decoded_from_the_url():
    url, header = split_credentials("http://u%40x:p%3Aw@127.0.0.1:8000/v1")
    assert url == "http://127.0.0.1:8000/v1"
    assert base64.b64decode(header.removeprefix("Basic ")).decode() == "u@x:p:w"
    assert split_credentials("http://host/v1") == ("http://host/v1", None)


def test_redact_text_and_values_reach_every_address_in_nested_data():
    assert redact_text("failed at http://u:pw@h/v1 and https://k:s@j") == "failed at http://h/v1 and https://j"
    data = {"api_base": "http://u:pw@h/v1", "judge": {"api_base": "https://a:b@j"}, "list": ["ftp://x:y@z"],
            "email": "ann@example.com", "n": 3}
    assert redact_values(data) == {"api_base": "http://h/v1", "judge": {"api_base": "https://j"},
                                   "list": ["ftp://z"], "email": "ann@example.com", "n": 3}
    assert redact_url(None) is None and redact_url("") is None
