// /app/connect hands the new token to the app: kept in this browser only, then back to the app.
const token = document.getElementById('token').dataset.token
if (token) {
  localStorage.setItem('moat.token', token)
  localStorage.removeItem('moat.since')
  location.replace('/app/')
}
