import json
import logging

logger = logging.getLogger()
logger.setLevel(logging.INFO)


def handler(event, context):
    name = event.get("name", "world") if isinstance(event, dict) else "world"
    logger.info("greeting %s", name)
    print(f"remaining time: {context.get_remaining_time_in_millis()} ms")
    return {"statusCode": 200, "body": json.dumps({"message": f"Hello, {name}!"})}
