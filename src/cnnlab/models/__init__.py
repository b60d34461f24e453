"""The model zoo: importing this package registers every model family."""

from cnnlab.models import lenet  # noqa: F401
