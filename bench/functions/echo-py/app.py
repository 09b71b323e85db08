"""Echo handler for the invoke-overhead benchmark (awslambdaric and workbench's own client)."""


def handler(event, context):
    return event
