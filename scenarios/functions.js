// Artillery helper functions (the original's artillery/functions.js): hooks and function steps
// for the scenarios here, run by `artillery run` and by `mesh load run` alike (mesh load starts
// Node.js for them only because a script names this file as its config.processor).
'use strict';

// afterResponse: which node answered (the X-Served-By header: "web1/0"), counted per node,
// and the answers the load balancer gave because no instance was up (503).
function trackNode(requestParams, response, context, events, next) {
  const node = response.headers['x-served-by'] || 'none';
  events.emit('counter', `served_by.${node}`, 1);
  if (response.statusCode === 503) events.emit('counter', 'failover.unavailable', 1);
  context.vars.lastNode = node;
  return next();
}

// function step / beforeScenario: a user name for the requests that follow.
function setUser(context, events, next) {
  context.vars.user = `user-${Math.floor(Math.random() * 1000)}`;
  return next();
}

module.exports = { trackNode, setUser };
