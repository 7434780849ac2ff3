"""Reads the analytics dashboard in headless Chromium (Debian's browser, driven by Playwright) the
way a publisher would: open BASE_URL/dashboard/, sign in, wait for the first render, and, with
--expect-title, keep waiting (the page refreshes itself every 10 s; the script also reloads it
now and then) until the top titles list that title (by id or name) with at least one view. Then
writes a full-page screenshot and prints one JSON line of what the page shows:
{"views", "watch_seconds", "unique_viewers", "top_titles" (ids), "top_title_names", "top_title_views",
 "countries", "edges", "revenue", "range", "console_errors", "failed_requests"}.

usage: dashboard_in_browser.py BASE_URL EMAIL PASSWORD SCREENSHOT [--expect-title TITLE_ID] [--timeout 60] [--range hour|day|week|month]
Exits 1 with the reason on stderr when the page does not load, shows an error, never lists the
title, or logs a JavaScript error (console.error or an uncaught exception). Failed HTTP requests
(a title the catalog no longer shows, say) are reported in failed_requests but are not errors."""
import argparse
import asyncio
import json
import sys
import time

from playwright.async_api import async_playwright

# What the page shows, read from the data attributes dashboard.js puts on tiles and rows.
READ_PAGE = """() => {
  const tile = (id) => document.querySelector(`[data-testid="${id}"]`);
  const number = (id) => { const v = tile(id) && tile(id).dataset.value; return v === undefined || v === '' ? null : Number(v); };
  const rows = (id) => [...document.querySelectorAll(`[data-testid="${id}"] tbody tr`)];
  const revenue = tile('revenue') && tile('revenue').dataset.value;
  return {
    range: document.body.dataset.range || null,
    renders: Number(document.body.dataset.renders || 0),
    views: number('views'),
    unique_viewers: number('unique-viewers'),
    watch_seconds: number('watch-time'),
    top_titles: rows('top-titles').map((r) => r.dataset.titleId),
    top_title_names: rows('top-titles').map((r) => r.dataset.name || r.dataset.titleId),
    top_title_views: Object.fromEntries(rows('top-titles').map((r) => [r.dataset.titleId, Number(r.dataset.views)])),
    countries: rows('countries').map((r) => r.dataset.country),
    edges: rows('edges').map((r) => r.dataset.edge),
    revenue: revenue ? JSON.parse(revenue) : {},
    error: (() => { const e = document.getElementById('error'); return e && !e.hidden ? e.textContent : null; })(),
  };
}"""

# True once the expected title is listed with views >= 1 (by id, or by name).
TITLE_LISTED = """(expected) => [...document.querySelectorAll('[data-testid="top-titles"] tbody tr')]
  .some((r) => (r.dataset.titleId === expected || r.dataset.name === expected) && Number(r.dataset.views) >= 1)"""


class Failure(Exception):
    """A check that failed: the message says which, in the script's words."""


async def main(args):
    url = args.base_url.rstrip("/") + "/dashboard/"
    deadline = time.monotonic() + args.timeout
    console_errors, failed_requests = [], []
    result = {"url": url}
    failure = None
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = None
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 1000})
            # Chromium logs every failed HTTP request as a console error too ("Failed to load
            # resource"); those are kept apart, as failed_requests.
            page.on("console", lambda m: console_errors.append(m.text)
                    if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
            page.on("pageerror", lambda e: console_errors.append("uncaught: " + str(e)))
            page.on("response", lambda r: failed_requests.append(f"{r.status} {r.url}") if r.status >= 400 else None)

            async def wait_loaded():
                """Until the first render; fails if the page shows an error line (a 403, a problem) instead."""
                remaining = max(1000, (deadline - time.monotonic()) * 1000)
                await page.wait_for_function(
                    "() => document.body.dataset.loaded === '1' || document.body.dataset.error !== undefined"
                    " || document.getElementById('sign-in-error').textContent !== ''",
                    timeout=remaining, polling=200)
                sign_in_error = await page.locator("#sign-in-error").inner_text()
                if sign_in_error:
                    raise Failure(f"sign-in failed: {sign_in_error}")
                if await page.evaluate("() => document.body.dataset.loaded !== '1'"):
                    raise Failure(f"the dashboard did not load: {(await page.evaluate(READ_PAGE))['error']}")

            if args.range:  # the page keeps its range in sessionStorage, read as it starts
                await page.add_init_script(f"sessionStorage.setItem('dashboard_range', {json.dumps(args.range)})")
            await page.goto(url)
            await page.fill("#email", args.email)
            await page.fill("#password", args.password)
            await page.click("#sign-in-button")
            await wait_loaded()

            if args.expect_title:
                last_reload = time.monotonic()
                while not await page.evaluate(TITLE_LISTED, args.expect_title):
                    if time.monotonic() > deadline:
                        raise Failure(f"the top titles never listed {args.expect_title} with a view within {args.timeout:.0f} s")
                    # The page refreshes itself every 10 s; a reload now and then also starts afresh
                    # (name look-ups included) should a refresh have gone wrong.
                    if time.monotonic() - last_reload > 25:
                        await page.reload()
                        await wait_loaded()
                        last_reload = time.monotonic()
                    await page.wait_for_timeout(500)
            await page.wait_for_timeout(300)  # the last layout settles before the picture
        except Failure as error:
            failure = str(error)
        except Exception as error:  # noqa: BLE001 - reported with what was seen so far
            failure = str(error).splitlines()[0]
        finally:
            # What the page shows, and its picture, on success and failure alike.
            if page is not None:
                try:
                    result.update(await page.evaluate(READ_PAGE))
                    await page.screenshot(path=args.screenshot, full_page=True)
                except Exception as error:  # noqa: BLE001
                    failure = failure or "cannot read the page: " + str(error).splitlines()[0]
            await browser.close()
    result["console_errors"] = console_errors
    result["failed_requests"] = failed_requests[-20:]
    if not failure and console_errors:
        failure = f"JavaScript errors on the page: {console_errors}"
    if not failure and result.get("error"):
        failure = f"the page shows an error: {result['error']}"
    print(json.dumps(result))
    if failure:
        print(f"dashboard_in_browser: {failure}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base_url")
    parser.add_argument("email")
    parser.add_argument("password")
    parser.add_argument("screenshot")
    parser.add_argument("--expect-title", dest="expect_title")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--range", choices=["hour", "day", "week", "month"])
    asyncio.run(main(parser.parse_args()))
