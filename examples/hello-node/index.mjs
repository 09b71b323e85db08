// A Node.js Lambda function: an ES module exporting an async handler (handler: index.handler).
export const handler = async (event, context) => {
  const name = typeof event?.name === 'string' && event.name ? event.name : 'world';
  console.log(`greeting ${name}`);
  return {
    statusCode: 200,
    body: JSON.stringify({ message: `Hello, ${name}!`, requestId: context.awsRequestId }),
  };
};
