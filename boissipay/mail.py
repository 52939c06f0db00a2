"""The local e-mail backend: Django's file backend, but the files (invoices with their
PDFs and the customers' addresses) are readable by their owner only. Refused in
production (config.production), where SMTP is required."""

import os

from django.core.mail.backends import filebased


class PrivateFileEmailBackend(filebased.EmailBackend):
    def __init__(self, *args, file_path=None, **kwargs):
        kwargs["file_path"] = file_path
        super().__init__(*args, **kwargs)
        os.chmod(self.file_path, 0o700)

    def open(self):
        if self.stream is None:
            descriptor = os.open(self._get_filename(), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self.stream = os.fdopen(descriptor, "ab")
            return True
        return False
