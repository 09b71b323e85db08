// workbench's Node.js runtime client: the process Lambda's `nodejs*.x` runtimes run inside the
// sandbox, rewritten on built-ins only. Launched as `node runtime.mjs` with cwd = the function
// folder; it loads `_HANDLER` from LAMBDA_TASK_ROOT, then loops on the Runtime API
// (`AWS_LAMBDA_RUNTIME_API`, host:port). Behaviour follows
// aws-lambda-nodejs-runtime-interface-client 3.x (the client behind nodejs18.x-nodejs22.x), and
// 4.x under nodejs24.x (no callback handlers, no context.succeed/fail/done); deliberate
// differences are marked DEVIATION.
//
// Lifecycle, as in the real client:
// - init failure: log "Uncaught Exception", POST /runtime/init/error, exit 129 (an import error
//   reaches the real client as an uncaught exception, hence 129 and not 1);
// - handler failure (throw, rejection, callback(err), context.fail): log "Invoke Error", POST
//   /invocation/{id}/error, keep looping;
// - uncaughtException / unhandledRejection while an invoke runs: POST that invoke's /error, exit
//   129 / 128. Between invokes there is nothing left to fail, so it only logs and exits.
// - callbackWaitsForEmptyEventLoop really waits: a callback(null, result) is posted when Node's
//   event loop drains ('beforeExit'). Our idle keep-alive socket is unref'd by http.Agent, so it
//   does not hold the loop open. A handler that never completes is settled at that point too:
//   non-async handlers answer null, async ones fail with Runtime.NodeJsExit.

import fs from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import util from 'node:util';

const require = createRequire(import.meta.url);
const env = process.env;

// ---------------------------------------------------------------- errors

function runtimeErrorClass(name) {
  const cls = class extends Error {};
  // On the prototype, as the real client does, so `stack` starts with "Runtime.X: ..." and
  // constructor.name (used by the JSON log format) stays the short name.
  Object.defineProperty(cls, 'name', { value: name });
  cls.prototype.name = `Runtime.${name}`;
  return cls;
}
const MalformedHandlerName = runtimeErrorClass('MalformedHandlerName');
const ImportModuleError = runtimeErrorClass('ImportModuleError');
const HandlerNotFound = runtimeErrorClass('HandlerNotFound');
const UserCodeSyntaxError = runtimeErrorClass('UserCodeSyntaxError');
const NodeJsExit = runtimeErrorClass('NodeJsExit');
const UnhandledPromiseRejection = runtimeErrorClass('UnhandledPromiseRejection');
const CallbackHandlerDeprecated = runtimeErrorClass('CallbackHandlerDeprecated');
// nodejs24.x runs aws-lambda-ric 4, which dropped callback handlers and context.succeed /
// fail / done; nodejs22.x and older run 3.x, which has them. The runtime is read from
// AWS_EXECUTION_ENV, as Lambda sets it.
const RUNTIME_MAJOR = Number(/^AWS_Lambda_nodejs(\d+)\.x$/.exec(env.AWS_EXECUTION_ENV ?? '')?.[1]);
const NO_CALLBACKS = RUNTIME_MAJOR >= 24;
const CALLBACK_REMOVED_MESSAGE =
  'ERROR: AWS Lambda has removed support for callback-based function handlers starting with ' +
  'Node.js 24. You need to modify this function to use a supported handler signature to use ' +
  'Node.js 24 or later. For more information see ' +
  'https://docs.aws.amazon.com/lambda/latest/dg/nodejs-handler.html.';
const NODEJS_EXIT_MESSAGE =
  'The Lambda runtime client detected an unexpected Node.js exit code. This is most commonly ' +
  'caused by a Promise that was never settled. For more information, see ' +
  'https://nodejs.org/docs/latest/api/process.html#exit-codes';

// Duck-typed like the real client, so errors from other realms (vm, workers) keep their name.
const isErrorLike = (e) =>
  util.types.isNativeError(e) ||
  Boolean(e && typeof e.name === 'string' && e.name && typeof e.message === 'string' &&
    e.message && typeof e.stack === 'string');

// The error document Lambda returns to the invoker: `trace`, not `stackTrace`, in Node.
function errorDocument(err) {
  try {
    if (isErrorLike(err)) {
      const clean = (s) => s?.replaceAll('\x7F', '%7F');
      return { errorType: clean(err.name), errorMessage: clean(err.message),
        trace: clean(err.stack).split('\n') };
    }
    return { errorType: typeof err, errorMessage: err.toString(), trace: [] };
  } catch {
    return { errorType: 'handled', errorMessage: 'callback called with Error argument, but there ' +
      'was a problem while retrieving one or more of its message, name, and stack' };
  }
}

const intoError = (err) => (err instanceof Error ? err : new Error(err));

// Text-format log payload: name/message/stack are not enumerable, so spell them out.
function formatErrorForLog(err) {
  const expand = (_key, value) => {
    if (!(value instanceof Error)) return value;
    const out = { errorType: value.name, errorMessage: value.message, code: value.code, ...value };
    if (typeof value.stack === 'string') out.stack = value.stack.split('\n');
    return out;
  };
  try {
    return '\t' + JSON.stringify(err, expand);
  } catch {
    return '\t' + JSON.stringify(errorDocument(err));
  }
}

// ---------------------------------------------------------------- logging

const LEVELS = { TRACE: 1, DEBUG: 2, INFO: 3, WARN: 4, ERROR: 5, FATAL: 6 };
const jsonLogs = env.AWS_LAMBDA_LOG_FORMAT?.toUpperCase() === 'JSON';
const minLevel = LEVELS[env.AWS_LAMBDA_LOG_LEVEL?.toUpperCase()] ?? LEVELS.TRACE;
// Shared through global symbols like the real client: tracing/logging libraries read them.
const REQUEST_ID = Symbol.for('aws.lambda.runtime.requestId');
const TENANT_ID = Symbol.for('aws.lambda.runtime.tenantId');

function jsonRecord(level, params) {
  const record = { timestamp: new Date().toISOString(), level, requestId: globalThis[REQUEST_ID] };
  if (globalThis[TENANT_ID] != null) record.tenantId = globalThis[TENANT_ID];
  if (params.length === 1) {
    // A lone argument stays structured (objects become JSON, errors get their fields).
    record.message = params[0];
    try {
      return JSON.stringify(record, (_key, value) => value instanceof Error
        ? { errorType: value.constructor?.name ?? 'UnknownError', errorMessage: value.message,
          stackTrace: typeof value.stack === 'string' ? value.stack.split('\n') : value.stack,
          ...value }
        : value);
    } catch {
      record.message = util.format(params[0]);
      return JSON.stringify(record);
    }
  }
  record.message = util.format(...params);
  const err = params.find((p) => p instanceof Error);
  if (err) {
    Object.assign(record, { errorType: err.constructor?.name ?? 'UnknownError',
      errorMessage: err.message,
      stackTrace: typeof err.stack === 'string' ? err.stack.split('\n') : [] });
  }
  return JSON.stringify(record);
}

function writeLog(level, message, params) {
  const line = jsonLogs
    ? jsonRecord(level, [message, ...params])
    : `${new Date().toISOString()}\t${globalThis[REQUEST_ID]}\t${level}\t` +
      util.format(message, ...params);
  // One record per line: CloudWatch splits on \n, so multi-line messages use \r.
  process.stdout.write(line.replace(/\n/g, '\r') + '\n');
}

function patchConsole() {
  const logger = (level) => (LEVELS[level] >= minLevel
    ? (message, ...params) => writeLog(level, message, params)
    : () => {});
  console.trace = logger('TRACE');
  console.debug = logger('DEBUG');
  console.info = logger('INFO');
  console.log = console.info;
  console.warn = logger('WARN');
  console.error = logger('ERROR');
  console.fatal = (message, ...params) => writeLog('FATAL', message, params);
}

function logError(label, err) {
  if (jsonLogs) console.error(intoError(err));
  else console.error(label, formatErrorForLog(intoError(err)));
}

// Complaints about the Runtime API itself bypass AWS_LAMBDA_LOG_LEVEL: they are workbench's.
const logRuntimeProblem = (message) => writeLog('ERROR', message, []);

// ---------------------------------------------------------------- Runtime API client

const api = env.AWS_LAMBDA_RUNTIME_API ?? '';
const apiHost = api.slice(0, api.lastIndexOf(':')).replace(/^\[(.*)\]$/, '$1');
const apiPort = Number(api.slice(api.lastIndexOf(':') + 1));
// One persistent connection: the runtime never has two requests in flight.
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const RUNTIME = '/2018-06-01/runtime';

function request(method, urlPath, body, headers, retried = false) {
  return new Promise((resolve, reject) => {
    const options = { host: apiHost, port: apiPort, method, path: urlPath, agent, headers };
    const req = http.request(options, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers,
        body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', (err) => {
      // The server may have closed our idle keep-alive socket just as we reused it.
      if (!retried && req.reusedSocket && err.code === 'ECONNRESET') {
        request(method, urlPath, body, headers, true).then(resolve, reject);
      } else {
        reject(err);
      }
    });
    req.end(body);
  });
}

async function post(urlPath, body, extraHeaders = {}) {
  const headers = { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body),
    ...extraHeaders };
  const res = await request('POST', urlPath, body, headers);
  // A refused post (413 too large, 403 posted twice, 400 stale id) does not end the runtime:
  // the invoke is over either way, and the service expects us back on /next.
  if (res.status !== 202) logRuntimeProblem(`POST ${urlPath} answered ${res.status}: ${res.body}`);
}

async function nextInvocation() {
  const res = await request('GET', `${RUNTIME}/invocation/next`, undefined, {});
  if (res.status !== 200) {
    throw new Error(`GET ${RUNTIME}/invocation/next answered ${res.status}: ${res.body}`);
  }
  return res;
}

const invocationPath = (id, what) => `${RUNTIME}/invocation/${encodeURIComponent(id)}/${what}`;

function postResult(id, result) {
  let body;
  try {
    body = JSON.stringify(result === undefined ? null : result) ?? 'null';
  } catch {
    // The real client's wording and plain `Error` type (there is no Runtime.MarshalError in Node).
    return postInvokeError(id, new Error('Unable to stringify response body'));
  }
  return post(invocationPath(id, 'response'), body);
}

const postErrorDocument = (id, err) =>
  post(invocationPath(id, 'error'), JSON.stringify(errorDocument(err)));

function postInvokeError(id, err) {
  logError('Invoke Error', err);
  return postErrorDocument(id, err);
}

function postInitError(err) {
  const doc = errorDocument(err);
  return post(`${RUNTIME}/init/error`, JSON.stringify(doc),
    { 'Lambda-Runtime-Function-Error-Type': doc.errorType });
}

// ---------------------------------------------------------------- loading the handler

function inModuleScope(dir) {
  // Node's rule for `.js`: the nearest package.json decides; node_modules is a boundary.
  for (;;) {
    if (dir.endsWith(`${path.sep}node_modules`)) return false;
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj)) {
      try {
        return JSON.parse(fs.readFileSync(pj, 'utf8'))?.type === 'module';
      } catch (e) {
        console.warn(`${pj} cannot be read, it will be ignored for ES module detection purposes.`,
          e);
        return false;
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) return false;
    dir = parent;
  }
}

const importFile = (file) => import(pathToFileURL(file).href);

function requireFile(file) {
  try {
    return require(file);
  } catch (e) {
    // DEVIATION: the real client lets these fail the init. An ES module reached through
    // require (a package `main`, or top-level await under Node's require(esm)) loads instead.
    if (e?.code === 'ERR_REQUIRE_ESM' || e?.code === 'ERR_REQUIRE_ASYNC_MODULE') {
      return importFile(require.resolve(file)); // import() takes no directories
    }
    throw e;
  }
}

async function loadModule(taskRoot, moduleRoot, name) {
  const base = path.resolve(taskRoot, moduleRoot, name);
  if (fs.existsSync(base)) return requireFile(base);
  const esm = inModuleScope(path.dirname(base));
  if (fs.existsSync(`${base}.js`)) return (esm ? importFile : requireFile)(`${base}.js`);
  if (fs.existsSync(`${base}.mjs`)) return importFile(`${base}.mjs`);
  if (fs.existsSync(`${base}.cjs`)) return requireFile(`${base}.cjs`);
  // Node's own resolution (node_modules packages); its failure is the message Lambda shows:
  // "Cannot find module 'index'\nRequire stack:\n- <this file>".
  return requireFile(require.resolve(name, { paths: [taskRoot, moduleRoot] }));
}

async function loadHandler(taskRoot, fullHandler) {
  if (fullHandler.includes('..')) {
    throw new MalformedHandlerName(`'${fullHandler}' is not a valid handler name. Use absolute ` +
      'paths when specifying root directories in handler names.');
  }
  const file = path.basename(fullHandler);
  const moduleRoot = fullHandler.slice(0, fullHandler.indexOf(file));
  const match = /^([^.]*)\.(.*)$/.exec(file);
  if (!match) throw new MalformedHandlerName('Bad handler');
  const [, moduleName, exportPath] = match;

  let mod;
  try {
    mod = await loadModule(taskRoot, moduleRoot, moduleName);
  } catch (e) {
    if (e instanceof SyntaxError) throw new UserCodeSyntaxError(String(e));
    if (e?.code === 'MODULE_NOT_FOUND') throw new ImportModuleError(String(e));
    throw e;
  }
  const fn = exportPath.split('.').reduce((obj, key) => obj && obj[key], mod);
  if (!fn) throw new HandlerNotFound(`${fullHandler} is undefined or not exported`);
  if (typeof fn !== 'function') throw new HandlerNotFound(`${fullHandler} is not a function`);
  // ric 4 judges by the declared parameters alone, async or not: three or more is a
  // callback handler, and the init fails before any event arrives
  if (NO_CALLBACKS && fn.length >= 3) throw new CallbackHandlerDeprecated(CALLBACK_REMOVED_MESSAGE);
  return fn;
}

// ---------------------------------------------------------------- invoking

// 'init' until the handler is loaded, 'invoke' while one runs, 'idle' while waiting on /next.
let phase = 'init';
let currentId;
let onLoopDrained = null;
process.on('beforeExit', () => {
  const settle = onLoopDrained;
  onLoopDrained = null;
  settle?.();
});

function parseHeaderJson(value, name) {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(value);
  } catch (err) {
    throw new Error(`Cannot parse ${name} as json: ${err.toString()}`);
  }
}

function invoke(handler, isAsync, { headers, body }) {
  const id = headers['lambda-runtime-aws-request-id'];
  const tenantId = headers['lambda-runtime-aws-tenant-id'];
  phase = 'invoke';
  currentId = id;
  globalThis[REQUEST_ID] = id;
  globalThis[TENANT_ID] = tenantId;
  if (headers['lambda-runtime-trace-id']) env._X_AMZN_TRACE_ID = headers['lambda-runtime-trace-id'];
  else delete env._X_AMZN_TRACE_ID;

  return new Promise((resolve) => {
    let finished = false;
    let waitForEmptyLoop = true;
    const report = (err, result) => {
      onLoopDrained = null;
      const posted = err !== undefined && err !== null
        ? postInvokeError(id, err) : postResult(id, result);
      posted.then(resolve, (e) => { logRuntimeProblem(`Runtime API failure: ${e}`); resolve(); });
    };
    // Callback, succeed, fail, done and the returned promise race; only the first one counts.
    const once = (fn) => (...args) => {
      if (!finished) {
        finished = true;
        fn(...args);
      }
    };
    const callback = once((err, result) => {
      if ((err !== undefined && err !== null) || !waitForEmptyLoop) report(err, result);
      else onLoopDrained = () => setImmediate(() => report(null, result));
    });
    const done = once(report);
    const succeed = once((result) => report(null, result));
    const fail = once((err) => report(err ?? 'handled', null));
    // Neither callback nor promise: the invoke ends when nothing is left to run.
    onLoopDrained = once(() => (isAsync
      ? report(new NodeJsExit(NODEJS_EXIT_MESSAGE)) : report(null, null)));

    try {
      const event = JSON.parse(body);
      const deadline = Number(headers['lambda-runtime-deadline-ms']);
      const context = {
        get callbackWaitsForEmptyEventLoop() { return waitForEmptyLoop; },
        set callbackWaitsForEmptyEventLoop(value) { waitForEmptyLoop = value; },
        ...(NO_CALLBACKS ? {} : { succeed, fail, done }),
        functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
        functionName: env.AWS_LAMBDA_FUNCTION_NAME,
        memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
        logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
        logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
        clientContext: parseHeaderJson(headers['lambda-runtime-client-context'], 'ClientContext'),
        identity: parseHeaderJson(headers['lambda-runtime-cognito-identity'], 'CognitoIdentity'),
        invokedFunctionArn: headers['lambda-runtime-invoked-function-arn'],
        awsRequestId: id,
        tenantId,
        getRemainingTimeInMillis: () => deadline - Date.now(),
      };
      const returned = handler(event, context, callback);
      if (returned && typeof returned.then === 'function') returned.then(succeed, fail);
    } catch (err) {
      callback(err);
    }
  });
}

// An error nobody caught ends the process, as in Lambda; the current invoke (or init) gets it.
let crashing = false;
function crash(err, exitCode) {
  if (crashing) return;
  crashing = true;
  onLoopDrained = null;
  const posted = phase === 'init' ? postInitError(err)
    : phase === 'invoke' ? postErrorDocument(currentId, err)
      : Promise.resolve();
  posted.catch(() => {}).finally(() => process.exit(exitCode));
}

process.on('uncaughtException', (err) => {
  logError('Uncaught Exception', err);
  crash(err, 129);
});
process.on('unhandledRejection', (reason, promise) => {
  const err = new UnhandledPromiseRejection(reason);
  Object.assign(err, { reason, promise });
  logError('Unhandled Promise Rejection', err);
  crash(err, 128);
});

// ---------------------------------------------------------------- main

patchConsole();
// DEVIATION: response streaming is not implemented; say so instead of "awslambda is not defined".
globalThis.awslambda = {
  streamifyResponse() {
    throw new Error('workbench: response streaming (awslambda.streamifyResponse) is not ' +
      'supported yet');
  },
};

let handler;
try {
  handler = await loadHandler(env.LAMBDA_TASK_ROOT || process.cwd(), env._HANDLER ?? '');
} catch (err) {
  logError('Uncaught Exception', err);
  crash(err, 129);
}

if (handler) {
  const isAsync = handler.constructor?.name === 'AsyncFunction';
  phase = 'idle';
  try {
    for (;;) {
      const invocation = await nextInvocation();
      await invoke(handler, isAsync, invocation);
      phase = 'idle';
    }
  } catch (err) {
    process.stderr.write(`workbench node runtime: ${err.stack ?? err}\n`);
    process.exit(1);
  }
}
