"""Stripe webhook signatures computed by the official `stripe` library (the test venv's), as a
cross-check for our own signing and verification code.

usage: stripe_sign.py SECRET TIMESTAMP           < payload
           prints stripe.WebhookSignature.generate_signature_header(payload, SECRET, TIMESTAMP),
           e.g. "t=1700000000,v1=1fa0…"
       stripe_sign.py --verify SECRET HEADER     < payload
           runs stripe.Webhook.construct_event(payload, HEADER, SECRET) (300 s tolerance) and
           prints "ok", or the class name of what it raised (e.g. SignatureVerificationError)

The payload is read from stdin as bytes and used exactly (no trailing newline is stripped).
"""
import os
import sys
import tempfile

# The library writes a telemetry id under $XDG_CONFIG_HOME/stripe when it talks to the API; keep
# anything it might write out of the user's home.
_config = tempfile.TemporaryDirectory(prefix="stripe-sign-")
os.environ["XDG_CONFIG_HOME"] = _config.name

import stripe  # noqa: E402

stripe.enable_telemetry = False


def main(argv):
    payload = sys.stdin.buffer.read().decode("utf-8")
    if len(argv) == 4 and argv[1] == "--verify":
        secret, header = argv[2], argv[3]
        try:
            stripe.Webhook.construct_event(payload, header, secret)
        except Exception as e:  # the class name is the answer
            print(type(e).__name__)
        else:
            print("ok")
        return 0
    if len(argv) == 3:
        secret, timestamp = argv[1], int(argv[2])
        print(stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    code = main(sys.argv)
    _config.cleanup()
    sys.exit(code)
