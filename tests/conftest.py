import os
import sys

os.environ.setdefault("SIYU_TESTING", "1")
assert "pytest" in sys.modules
