"""The payment provider's webhook signatures: the kernel's signed-webhook scheme
(boissipay.signatures), which the e-invoicing platform's webhook uses too."""

from boissipay.signatures import HEADER, InvalidSignature, sign, verify

__all__ = ["HEADER", "InvalidSignature", "sign", "verify"]
