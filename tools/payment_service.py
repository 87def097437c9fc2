"""A LOCAL STAND-IN for the external payment service: not part of the suite, never deployed.

In production a card processor (or a payments team's service) sits behind the payment queue. This
script plays it for `make demo` and local runs, honouring the contract that
functions/order-processor/README.md states for it:

- it reads payment requests from the payment queue (`PaymentQueue`, FIFO);
- it charges at most once per `idempotency_key` (the order id): a repeated request gets the answer
  it got the first time, and nothing is charged again (the ledger remembers every key it answered);
- it answers each key on the payment results queue (`PaymentResultsQueue`) with
  `{"order_id", "idempotency_key", "outcome": "SUCCEEDED" | "FAILED", "reason"?}`.

Its rule, by the cents of the amount (so a demo or a test picks the outcome with the order total):
- `.13` → FAILED, reason CARD_DECLINED;
- `.77` → no answer at all: the customer abandoned the checkout, and the order expires after
  `PAYMENT_TIMEOUT_SECS`;
- anything else → SUCCEEDED.

Usage: payment_service.py --endpoint http://127.0.0.1:4566 --requests URL --results URL
       [--ledger .local/payment-ledger.json] [--once]
"""
import argparse
import json
import time
from pathlib import Path

DECLINE_CENTS = 13
ABANDON_CENTS = 77


def decide(request):
    """The answer to one request (None: never answered), by the rule above."""
    cents = int(request["amount_minor"]) % 100
    if cents == DECLINE_CENTS:
        return {"outcome": "FAILED", "reason": "CARD_DECLINED"}
    if cents == ABANDON_CENTS:
        return None
    return {"outcome": "SUCCEEDED"}


class Ledger:
    """Every idempotency key answered, and the answer (kept in a JSON file when given one)."""

    def __init__(self, path=None):
        self.path = Path(path) if path else None
        self.answers = json.loads(self.path.read_text()) if self.path and self.path.exists() else {}
        self.charges = 0

    def answer(self, request):
        """(answer, first time?) for a request; charges only the first time a key is seen."""
        key = request["idempotency_key"]
        if key in self.answers:
            return self.answers[key], False
        answer = decide(request)
        self.answers[key] = answer
        if answer is not None and answer["outcome"] == "SUCCEEDED":
            self.charges += 1
        if self.path:
            self.path.write_text(json.dumps(self.answers, indent=1))
        return answer, True


def serve_once(sqs, requests_url, results_url, ledger, wait_seconds=0):
    """Handles what is on the payment queue now; returns [(order id, outcome or None, first time?)]."""
    handled = []
    while True:
        messages = sqs.receive_message(QueueUrl=requests_url, MaxNumberOfMessages=10,
                                       MessageAttributeNames=["All"], WaitTimeSeconds=wait_seconds).get("Messages", [])
        if not messages:
            return handled
        for m in messages:
            request = json.loads(m["Body"])
            # The key travels as an attribute too; the body's copy is the one answered.
            attribute = m.get("MessageAttributes", {}).get("idempotency_key", {}).get("StringValue")
            if attribute is not None and attribute != request.get("idempotency_key"):
                raise SystemExit(f"payment request {m['MessageId']}: idempotency key attribute and body differ")
            answer, first = ledger.answer(request)
            if answer is not None:
                result = {"order_id": request["order_id"], "idempotency_key": request["idempotency_key"], **answer}
                sqs.send_message(QueueUrl=results_url, MessageBody=json.dumps(result))
            sqs.delete_message(QueueUrl=requests_url, ReceiptHandle=m["ReceiptHandle"])
            handled.append((request["order_id"], answer and answer["outcome"], first))
        wait_seconds = 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--requests", required=True, help="payment queue URL")
    parser.add_argument("--results", required=True, help="payment results queue URL")
    parser.add_argument("--ledger", help="JSON file remembering answered idempotency keys")
    parser.add_argument("--once", action="store_true", help="answer what is queued now, then exit")
    parser.add_argument("--region", default="us-east-1")
    args = parser.parse_args()
    import boto3
    sqs = boto3.client("sqs", endpoint_url=args.endpoint, region_name=args.region,
                       aws_access_key_id="test", aws_secret_access_key="test")
    ledger = Ledger(args.ledger)
    while True:
        for order_id, outcome, first in serve_once(sqs, args.requests, args.results, ledger, wait_seconds=5):
            print(f"payment {order_id}: {outcome or 'no answer (abandoned)'}{'' if first else ' (repeat, not charged again)'}",
                  flush=True)
        if args.once:
            return
        time.sleep(0.2)


if __name__ == "__main__":
    main()
