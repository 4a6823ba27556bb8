"""The API reference page: Swagger UI from the Worker's own assets, rendering the served OpenAPI document."""


def test_the_docs_page_shows_every_operation_from_the_worker_alone(browser, stack):
    browser("newContext")
    browser("newPage", url=f"{stack.url}/docs.html")
    browser.wait_for(".opblock-summary-path[data-path='/api/jobs']")
    operations = browser("evaluate", expression="[...document.querySelectorAll('.opblock')].length")
    paths = browser("evaluate", expression="fetch('/api/openapi.json').then(r => r.json()).then(d => "
                                          "Object.values(d.paths).reduce((n, p) => n + Object.keys(p).length, 0))")
    assert operations == paths > 20
    origin = browser("evaluate", expression="location.origin")
    assets = browser("evaluate", expression="performance.getEntriesByType('resource').map(r => r.name)")
    assert assets and all(name.startswith(f"{origin}/") for name in assets), assets  # no CDN
    assert not [line for line in browser("logs") if "pageerror" in line]
    browser.screenshot("api-docs.png")
    browser("closePage")
