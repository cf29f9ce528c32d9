from tests.fixtures.gcp import *
from tests.fixtures.kafka import *
