// The sign-in dialog hands the new token to the add-in that opened it, then Outlook closes it.
const token = document.getElementById('token').dataset.token
Office.onReady(() => Office.context.ui.messageParent(token))
