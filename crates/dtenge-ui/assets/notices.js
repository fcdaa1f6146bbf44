// What a notification says, in the languages the two pages speak (the staff interface: Russian and English;
// the wallet: Kazakh too), from its kind and particulars (`NotificationView`: `kind`, `params`; amounts in
// tiyn). One definition for both pages: the UI server serves this file to each.
export const NOTICES = {
  en: {
    incoming: 'Incoming {amount} {currency}',
    held_for_you: '{amount} DT held for you until event {event} occurs',
    event_registered: 'Event {event} registered on the oracle',
    topped_up: '{amount} DT topped up from bank account {bank_account}',
    swept_over_cap: '{amount} DT above your balance cap moved to bank account {bank_account}',
    frozen: 'Your DA is frozen by order {order} of {by}: {reason}',
    arrested: '{amount} DT arrested by order {order} of {by}: {reason}',
    collection_ordered: 'Collection of up to {amount} DT by order {order} of {by}: {reason}',
    order_lifted: 'Order {order} lifted by {by}: {reason}',
    rekeyed: 'New key {address} issued after re-identification; the old key is revoked',
  },
  ru: {
    incoming: 'Поступление {amount} {currency}',
    held_for_you: '{amount} ЦТ удержано для вас до события {event}',
    event_registered: 'Событие {event} зарегистрировано у оракула',
    topped_up: '{amount} ЦТ зачислено с банковского счёта {bank_account}',
    swept_over_cap: '{amount} ЦТ сверх лимита остатка переведено на банковский счёт {bank_account}',
    frozen: 'Ваш цифровой счёт заморожен по распоряжению {order} ({by}): {reason}',
    arrested: 'Арест {amount} ЦТ по распоряжению {order} ({by}): {reason}',
    collection_ordered: 'Взыскание до {amount} ЦТ по распоряжению {order} ({by}): {reason}',
    order_lifted: 'Распоряжение {order} снято ({by}): {reason}',
    rekeyed: 'После повторной идентификации выпущен новый ключ {address}; старый ключ отозван',
  },
  kk: {
    incoming: 'Түсім {amount} {currency}',
    held_for_you: '{amount} ЦТ {event} оқиғасына дейін сіз үшін ұсталды',
    event_registered: '{event} оқиғасы оракулда тіркелді',
    topped_up: '{amount} ЦТ {bank_account} банк шотынан толықтырылды',
    swept_over_cap: 'Қалдық лимитінен асқан {amount} ЦТ {bank_account} банк шотына аударылды',
    frozen: 'Сандық шотыңыз {order} өкімі бойынша ({by}) бұғатталды: {reason}',
    arrested: '{order} өкімі бойынша ({by}) {amount} ЦТ-ға тыйым салынды: {reason}',
    collection_ordered: '{order} өкімі бойынша ({by}) {amount} ЦТ дейін өндіріп алу: {reason}',
    order_lifted: '{order} өкімі алынды ({by}): {reason}',
    rekeyed: 'Қайта сәйкестендіруден кейін жаңа {address} кілті берілді; ескі кілт қайтарып алынды',
  },
};

/** A notification in `lang` (English when that language has none), `money` formatting its amount; one whose
 * kind has no words here (stored before kinds were, or of a newer kind) keeps the node's English words. */
export function noticeText(n, lang, money) {
  const words = (NOTICES[lang] && NOTICES[lang][n.kind]) || NOTICES.en[n.kind];
  if (!Object.hasOwn(NOTICES.en, n.kind || '') || !words) return n.text || '';
  const params = n.params || {};
  return words.replace(/\{(\w+)\}/g, (_, name) => (name === 'amount' ? money(params.amount_tiyn) : params[name] ?? ''));
}
