"""A viewer with no money on the player page, in headless Chromium (Debian's browser, driven by
Playwright): sign in, see the balance and the title's price, press Play and get the clear
"not enough funds" message (402) with an add-funds button; press it and the title plays, with
the balance shown and the session's running cost.

usage: pay_in_browser.py PLAYER_URL EMAIL PASSWORD TITLE_ID SCREENSHOT
Prints one JSON object; exits 1 with the reason on failure."""
import asyncio
import json
import sys

from playwright.async_api import async_playwright


async def main(url, email, password, title_id, screenshot):
    result = {"url": url}
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 1000})
            console = []
            page.on("console", lambda message: console.append(message.type + ": " + message.text))
            await page.goto(url)
            await page.fill("#email", email)
            await page.fill("#password", password)
            await page.click("#sign-in-button")
            card = page.locator(f'#titles li[data-title-id="{title_id}"]')
            await card.wait_for(timeout=15000)
            result["card_meta"] = await card.locator(".meta").inner_text()
            await page.locator("#balance").wait_for(state="visible", timeout=15000)
            result["balance_before"] = await page.locator("#balance").inner_text()

            await card.locator("button.play").click()
            await page.locator("#funds").wait_for(state="visible", timeout=15000)
            result["refused_status"] = await page.locator("#status").inner_text()
            result["funds_message"] = await page.locator("#funds-message").inner_text()
            result["deposit_label"] = await page.locator("#deposit").inner_text()
            await page.screenshot(path=screenshot.replace(".png", "-refused.png"), full_page=True)

            await page.click("#deposit")
            await page.wait_for_function(
                "() => { const v = document.getElementById('video'); return v.currentTime > 2 || !!v.error; }", timeout=60000, polling=250)
            await page.wait_for_function(
                "() => !document.getElementById('cost').hidden && document.getElementById('cost').textContent.includes('Watched')",
                timeout=30000, polling=250)
            state = await page.evaluate(
                "() => { const v = document.getElementById('video');"
                " return { currentTime: v.currentTime, videoError: v.error ? v.error.code : null, fundsHidden: document.getElementById('funds').hidden,"
                " status: document.getElementById('status').dataset.state, cost: document.getElementById('cost').textContent,"
                " balance: document.getElementById('balance').textContent }; }")
            result.update(state)
            await page.screenshot(path=screenshot, full_page=True)
            result["console"] = console[-20:]
        except Exception as error:  # noqa: BLE001 - reported with what was seen so far
            result["error"] = str(error).splitlines()[0]
        finally:
            await browser.close()
    print(json.dumps(result))
    ok = ("error" not in result and result.get("videoError") is None and result.get("currentTime", 0) > 2 and result.get("fundsHidden")
          and "funds" in result.get("funds_message", "").lower())
    if not ok:
        print(f"the pay flow failed: {json.dumps(result)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
