// Baseline for the SMTP benchmark: accepts every recipient and discards every message,
// so the figure is Haraka's own cost on this machine.
exports.register = function () {
  this.register_hook('rcpt', 'accept_rcpt')
  this.register_hook('queue', 'discard')
}
exports.accept_rcpt = function (next) {
  next(OK)
}
exports.discard = function (next) {
  next(OK, 'discarded')
}
