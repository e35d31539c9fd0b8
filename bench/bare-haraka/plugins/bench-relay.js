// Second baseline for the SMTP benchmark: Haraka relaying every message through its own
// outbound queue to the benchmark's sink, i.e. Haraka's cost of the delivery half alone.
const outbound = require('./outbound')

exports.register = function () {
  this.sink_port = Number(this.config.get('bench_sink_port'))
  this.register_hook('rcpt', 'accept_rcpt')
  this.register_hook('queue', 'relay')
  this.register_hook('get_mx', 'to_sink')
}
exports.accept_rcpt = function (next) {
  next(OK)
}
exports.relay = function (next, connection) {
  outbound.send_trans_email(connection.transaction, next)
}
exports.to_sink = function (next) {
  next(OK, { exchange: '127.0.0.1', port: this.sink_port, priority: 0 })
}
