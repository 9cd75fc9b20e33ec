"""Test certificates made with openssl: a CA of the test's own, and server certificates for
127.0.0.1 that it signs."""
import os
import subprocess


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


class CertificateAuthority:
    """A P-256 certificate authority in `directory`; `ca.pem` is what clients trust."""

    def __init__(self, directory, name="herald test CA"):
        self.directory = directory
        self.key = os.path.join(directory, "ca.key")
        self.pem = os.path.join(directory, "ca.pem")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", self.key, "-out", self.pem, "-days", "2", "-subj", f"/CN={name}")

    def issue(self, name, common_name="127.0.0.1"):
        """A new key and a certificate for 127.0.0.1 signed by this CA: (certificate file, key file)."""
        key, csr, cert = (os.path.join(self.directory, f"{name}.{ext}") for ext in ("key", "csr", "pem"))
        ext = os.path.join(self.directory, f"{name}.cnf")
        with open(ext, "w") as f:
            f.write("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", key, "-out", csr, "-subj", f"/CN={common_name}")
        openssl("x509", "-req", "-in", csr, "-CA", self.pem, "-CAkey", self.key, "-CAcreateserial",
                "-out", cert, "-days", "2", "-extfile", ext)
        return cert, key
