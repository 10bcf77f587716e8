"""Steps shared by the browser tests."""
def submit(page, selector):
    """Click a submit button and wait for the page it leads to."""
    with page.expect_navigation():
        page.click(selector)


def login(page, site, username, password="password123"):
    """Log in through the form; the page ends on the marketplace."""
    page.goto(f"{site}/login.php")
    page.fill("#f-username", username)
    page.fill("#f-password", password)
    submit(page, "form[action='/login.php'] button[type=submit]")
