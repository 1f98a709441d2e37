"""Emulated hardware tokens for capit's tests, written for this project (see each module).

They sit *under* the real yubikey-manager (yubikit/ykman) and python-fido2 code: tests
replace only the libraries' device discovery/transport entry points (``ykman.hid``'s
``list_otp_devices``, ``fido2.hid``'s ``list_descriptors``/``open_connection``, pyscard's
``smartcard.System.readers``) with emulated devices; the protocol code above them is the
libraries' own.  The PC/SC tests instead run a real ``pcscd`` with a virtual card
(``vpcd_card.py``) and change nothing at all.
"""
