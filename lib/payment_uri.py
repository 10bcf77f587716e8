"""EIP-681 payment URIs and their QR codes, for the payment page.

Native coin:  ethereum:<escrow>@<chain_id>?value=<wei>
ERC-20:       ethereum:<token>@<chain_id>/transfer?address=<escrow>&uint256=<base units>
Amounts are integers of base units (never floats or exponents), so a wallet that
scans the code asks for exactly the amount due.
"""
import re

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


def eip681(escrow_address, chain_id, amount_base_units, token_contract=""):
    """The EIP-681 URI paying `amount_base_units` to `escrow_address` on `chain_id`."""
    if not _ADDRESS.match(str(escrow_address or "")):
        raise ValueError(f"not an address: {escrow_address!r}")
    chain = int(chain_id)
    amount = int(str(amount_base_units))
    if chain <= 0 or amount < 0:
        raise ValueError("chain id must be positive and the amount not negative")
    if token_contract:
        if not _ADDRESS.match(token_contract):
            raise ValueError(f"not a token contract address: {token_contract!r}")
        return f"ethereum:{token_contract}@{chain}/transfer?address={escrow_address}&uint256={amount}"
    return f"ethereum:{escrow_address}@{chain}?value={amount}"


def qr_data_uri(text, scale=4):
    """An SVG QR code of `text` as a data: URI (fits the page's CSP: img-src 'self' data:)."""
    import segno  # pure Python; pinned in requirements.txt
    code = segno.make(text, error="m", micro=False)
    return code.svg_data_uri(scale=scale, border=4, dark="#000", light="#fff")
