"""Huawei regions and arguments: the SDK's region tables and overrides, the IAM endpoint,
the factories' argument rules, the SDK's variables and the renewal margins. No network."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pipestatus import Client
from pipestatus.auth import HuaweiAKSK
from pipestatus.auth.huawei import iam_url, keys_margin, token_margin
from pipestatus.vendors import REGISTRY

AK = "TESTACCESSKEY0000001"
SK = "test-secret-key-9d8e7f6a5b4c3d2e1f"


def test_exactly_one_credential_and_one_place() -> None:
    """The Huawei factories take exactly one of token/credentials and of base_url/region."""
    client = Client()
    aksk = HuaweiAKSK(AK, SK)
    with pytest.raises(ValueError, match="exactly one of token and credentials"):
        client.codearts_repo("https://h", token="t", credentials=aksk)
    with pytest.raises(ValueError, match="exactly one of token and credentials"):
        client.codearts_repo("https://h")
    with pytest.raises(ValueError, match="exactly one of base_url and region"):
        client.codearts_pipeline("https://h", region="cn-north-4", project_id="p", token="t")
    with pytest.raises(TypeError, match="credentials must be"):
        client.codearts_repo("https://h", credentials="t")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="HuaweiAKSK goes in credentials="):
        client.codearts_repo("https://h", token=aksk)  # type: ignore[arg-type]


def test_an_unknown_region_names_the_known_ones() -> None:
    """An unknown region is a ValueError listing the regions the SDK's table knows."""
    with pytest.raises(ValueError, match="unknown region 'mars-1'") as caught:
        Client().codearts_repo(region="mars-1", token="t")
    assert "cn-north-4" in str(caught.value)
    assert "af-north-1" in str(caught.value)


@pytest.mark.parametrize(
    ("vendor", "region", "url"),
    [
        ("codearts_repo", "cn-north-4", "https://codehub-ext.cn-north-4.myhuaweicloud.com"),
        ("codearts_repo", "tr-west-1", "https://codeartsrepo-ext.tr-west-1.myhuaweicloud.com"),
        ("codearts_repo", "me-east-1", "https://repo.me-east-1.myhuaweicloud.com"),
        ("codearts_pipeline", "cn-east-3", "https://cloudpipeline-ext.cn-east-3.myhuaweicloud.com"),
        (
            "codearts_pipeline",
            "la-south-2",
            "https://pipeline-external.la-south-2.myhuaweicloud.com",
        ),
        ("codearts_pipeline", "af-south-1", "https://pipeline.af-south-1.myhuaweicloud.com"),
    ],
)
def test_regions_pick_the_sdks_endpoints(vendor: str, region: str, url: str) -> None:
    """A region picks the endpoint of the SDK's region table."""
    regions = REGISTRY[vendor].regions
    assert regions is not None
    assert regions.endpoint(region, environ={}) == url


def test_v5_has_no_eu_west_101() -> None:
    """A region the SDK lists for one service only is unknown to the other."""
    repo, pipe = REGISTRY["codearts_repo"].regions, REGISTRY["codearts_pipeline"].regions
    assert repo is not None
    assert pipe is not None
    assert repo.endpoint("eu-west-101", environ={})
    with pytest.raises(ValueError, match="unknown region"):
        pipe.endpoint("eu-west-101", environ={})


def test_the_sdks_override_wins_for_its_region_only() -> None:
    """HUAWEICLOUD_SDK_REGION_{SERVICE}_{REGION} overrides that region's endpoint (the first
    of a list), even for a region the table lacks."""
    regions = REGISTRY["codearts_pipeline"].regions
    assert regions is not None
    environ = {
        "HUAWEICLOUD_SDK_REGION_CODEARTSPIPELINE_CN_NORTH_4": "https://a.example, https://b",
        "HUAWEICLOUD_SDK_REGION_CODEARTSPIPELINE_MY_LAB_1": "http://127.0.0.1:9",
    }
    assert regions.endpoint("cn-north-4", environ=environ) == "https://a.example"
    assert regions.endpoint("my-lab-1", environ=environ) == "http://127.0.0.1:9"
    assert regions.endpoint("cn-east-3", environ=environ).endswith("cn-east-3.myhuaweicloud.com")


@pytest.mark.parametrize(
    ("explicit", "region", "project", "environ", "url"),
    [
        ("https://iam.example", "cn-north-4", "x", {}, "https://iam.example"),
        (None, "cn-north-4", "x", {}, "https://iam.cn-north-4.myhuaweicloud.com"),
        (None, None, "ap-southeast-3_team", {}, "https://iam.ap-southeast-3.myhuaweicloud.com"),
        (None, "eu-west-101", "x", {}, "https://iam.myhuaweicloud.com"),
        (None, "cn-north-4", "x", {"HUAWEICLOUD_SDK_IAM_ENDPOINT": "https://o"}, "https://o"),
    ],
)
def test_the_iam_endpoint(
    explicit: str | None, region: str | None, project: str, environ: dict[str, str], url: str
) -> None:
    """IAM is the explicit URL, else the SDK's override, else the region's (the adapter's or
    the project's), else the global endpoint."""
    assert iam_url(explicit, region, project=project, environ=environ) == url


def test_from_env_names_missing_variables_only() -> None:
    """from_env without the SDK's variables names them, and holds no value."""
    with pytest.raises(ValueError, match="HUAWEICLOUD_SDK_SK must be set") as caught:
        HuaweiAKSK.from_env({"HUAWEICLOUD_SDK_AK": "AKVALUE1234"})
    assert "AKVALUE1234" not in str(caught.value)
    aksk = HuaweiAKSK.from_env(
        {
            "HUAWEICLOUD_SDK_AK": "AKVALUE1234",
            "HUAWEICLOUD_SDK_SK": "s",
            "HUAWEICLOUD_SDK_SECURITY_TOKEN": "st",
        }
    )
    assert aksk.ak == "AKVALUE1234"
    assert aksk.project_id is None


def test_token_margins() -> None:
    """A token is renewed max(1 h, 5 %) before expiry, at most half its lifetime; temporary
    keys 40 minutes before, at most half theirs."""
    assert token_margin(timedelta(hours=24)) == timedelta(hours=1.2)
    assert token_margin(timedelta(hours=4)) == timedelta(hours=1)
    assert token_margin(timedelta(seconds=2)) == timedelta(seconds=1)
    assert keys_margin(timedelta(hours=6)) == timedelta(minutes=40)
    assert keys_margin(timedelta(minutes=15)) == timedelta(minutes=7.5)
