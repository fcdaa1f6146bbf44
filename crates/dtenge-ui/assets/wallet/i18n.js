// The wallet's words in Russian, English and Kazakh; one key per concept.
export const DICT = {
  en: {
    title: 'Digital tenge wallet', open: 'Open a digital account', iin: 'IIN', name: 'Full name',
    open_btn: 'Create my key and open', key_note: 'Your key is made on this device and never leaves it.',
    home: 'Home', pay: 'Pay', qr: 'Pay by QR', receive: 'Receive', merchant: 'Merchant',
    standard: 'Standard', marked: 'Marked', held: 'Held', vat: 'VAT', total: 'Total',
    history: 'History', notifications: 'Notifications', nothing: 'Nothing yet',
    to_address: 'Address', to_iin: 'or IIN/BIN', to_bank: 'Bank', amount: 'Amount, DT', memo: 'Purpose',
    prepare: 'Review', confirm: 'Sign and pay', paid: 'Paid', refused: 'Refused',
    qr_image: 'QR image', qr_text: 'or paste the QR text', qr_read: 'Read QR', payee: 'Payee',
    expires: 'Valid until', reference: 'Reference', my_qr: 'My QR code', my_address: 'My address',
    make_qr: 'Show a QR for this order', waiting: 'Waiting for payment…', received: 'Payment received',
    account: 'Account', lang: 'Language',
  },
  ru: {
    title: 'Кошелёк цифрового тенге', open: 'Открыть цифровой счёт', iin: 'ИИН', name: 'ФИО',
    open_btn: 'Создать ключ и открыть', key_note: 'Ключ создаётся на этом устройстве и не покидает его.',
    home: 'Главная', pay: 'Перевести', qr: 'Оплата по QR', receive: 'Получить', merchant: 'Продавец',
    standard: 'Обычные', marked: 'Маркированные', held: 'Удержанные', vat: 'НДС', total: 'Итого',
    history: 'История', notifications: 'Уведомления', nothing: 'Пока ничего нет',
    to_address: 'Адрес', to_iin: 'или ИИН/БИН', to_bank: 'Банк', amount: 'Сумма, ЦТ', memo: 'Назначение',
    prepare: 'Проверить', confirm: 'Подписать и оплатить', paid: 'Оплачено', refused: 'Отказано',
    qr_image: 'Изображение QR', qr_text: 'или вставьте текст QR', qr_read: 'Прочитать QR', payee: 'Получатель',
    expires: 'Действует до', reference: 'Номер заказа', my_qr: 'Мой QR-код', my_address: 'Мой адрес',
    make_qr: 'Показать QR для заказа', waiting: 'Ожидание оплаты…', received: 'Оплата получена',
    account: 'Счёт', lang: 'Язык',
  },
  kk: {
    title: 'Цифрлық теңге әмияны', open: 'Цифрлық шот ашу', iin: 'ЖСН', name: 'Аты-жөні',
    open_btn: 'Кілт жасап, шот ашу', key_note: 'Кілт осы құрылғыда жасалады және одан шықпайды.',
    home: 'Басты бет', pay: 'Аудару', qr: 'QR арқылы төлеу', receive: 'Қабылдау', merchant: 'Сатушы',
    standard: 'Қарапайым', marked: 'Таңбаланған', held: 'Ұсталған', vat: 'ҚҚС', total: 'Барлығы',
    history: 'Тарих', notifications: 'Хабарламалар', nothing: 'Әзірге ештеңе жоқ',
    to_address: 'Мекенжай', to_iin: 'немесе ЖСН/БСН', to_bank: 'Банк', amount: 'Сома, ЦТ', memo: 'Мақсаты',
    prepare: 'Тексеру', confirm: 'Қол қойып төлеу', paid: 'Төленді', refused: 'Бас тартылды',
    qr_image: 'QR суреті', qr_text: 'немесе QR мәтінін қойыңыз', qr_read: 'QR оқу', payee: 'Алушы',
    expires: 'Мерзімі', reference: 'Тапсырыс нөмірі', my_qr: 'Менің QR-кодым', my_address: 'Менің мекенжайым',
    make_qr: 'Тапсырысқа QR көрсету', waiting: 'Төлем күтілуде…', received: 'Төлем алынды',
    account: 'Шот', lang: 'Тіл',
  },
};

let lang = localStorage.getItem('dtenge-wallet-lang') || 'ru';

export function t(key) {
  return (DICT[lang] && DICT[lang][key]) || DICT.en[key] || key;
}

export function setLang(next) {
  lang = DICT[next] ? next : 'ru';
  localStorage.setItem('dtenge-wallet-lang', lang);
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
}

export function currentLang() {
  return lang;
}
