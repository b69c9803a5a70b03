from services.common.migrate import run_env
from services.reservations.models import metadata

run_env(metadata)
