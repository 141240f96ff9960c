"""Verifies the DKIM signature of a message with dkimpy, for arflow's tests.

    python3 dkim_verify.py MESSAGE.eml DNS_TXT_FILE

The public key comes from DNS_TXT_FILE instead of DNS. Exit status: 0
verified, 1 not verified, 3 dkimpy (or PyNaCl, for Ed25519) is missing.
"""

import sys

try:
    import dkim
except ImportError:
    sys.exit(3)


def main():
    message = open(sys.argv[1], "rb").read()
    record = open(sys.argv[2], "rb").read().strip()
    try:
        ok = dkim.verify(message, dnsfunc=lambda name, timeout=5: record)
    except ImportError:
        sys.exit(3)
    print("verified" if ok else "NOT verified")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
