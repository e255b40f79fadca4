"""The control API's /metrics: requests counted by route template and status."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.integration.control.conftest import Api


def requests_by_label(text: str) -> dict[tuple[str, str, str], float]:
    return {
        (s.labels["method"], s.labels["route"], s.labels["status"]): s.value
        for family in text_string_to_metric_families(text)
        if family.name == "redisgate_http_requests"
        for s in family.samples
        if s.name == "redisgate_http_requests_total"
    }


async def test_requests_counted_by_route_template_and_status(api: Api) -> None:
    before = requests_by_label((await api.get("/metrics")).body)
    assert (await api.get("/healthz")).status == 200
    assert (await api.get("/v1/orgs/00000000-0000-0000-0000-000000000000")).status == 401
    assert (await api.get("/v1/orgs/00000000-0000-0000-0000-000000000001")).status == 401
    response = await api.get("/metrics")
    assert response.status == 200
    after = requests_by_label(response.body)

    def moved(key: tuple[str, str, str]) -> float:
        return after.get(key, 0) - before.get(key, 0)

    assert moved(("GET", "/healthz", "200")) == 1
    assert moved(("GET", "/v1/orgs/{org_id}", "401")) == 2  # the template, not the path
    assert moved(("GET", "/metrics", "200")) == 1
    assert "redisgate_http_request_duration_seconds_bucket" in response.body
    assert "# TYPE redisgate_commands_total counter" in response.body  # one registry
