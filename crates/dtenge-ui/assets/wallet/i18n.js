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
    offline: 'Offline', offline_note: 'Pay and receive with no network: the purse on this device signs and checks payments itself; deposit when back online.',
    purse_online: 'Online: set up and load', purse_setup: 'Set up / renew the purse (online)', purse_load: 'Load the purse from my account (online)',
    offline_pay: 'Pay offline', payee_device: 'Payee\'s device key', offline_sign: 'Sign the offline payment',
    offline_show: 'Show this to the payee (QR code, text or NFC):', offline_scan: 'or read its QR code from a photo or image', qr_none: 'no QR code found in the image', offline_qr_read: 'QR code read', offline_qr: 'QR code', camera: 'Scan with the camera', camera_stop: 'Stop the camera', no_camera: 'no camera can be opened in this browser', bytes: 'bytes',
    offline_receive: 'Receive offline', my_device: 'My device key', offline_paste: 'Paste the payment',
    offline_accept: 'Check and accept', purse_holdings: 'Offline holdings', purse_deposit: 'Deposit to my account (online)',
    purse_balance: 'Offline balance', purse_pending: 'Received, pending deposit', purse_until: 'Reconnect before',
    purse_left: 'Offline payments left', purse_none: 'No purse yet: set it up while online',
    purse_ready: 'Purse certified', loaded: 'Loaded', received_pending: 'Received (pending deposit)',
    sent_offline: 'Signed offline', deposited: 'Deposit', settled: 'settled', already_settled: 'already settled',
    double_spend: 'double spend — refused', held_loaded: 'loaded', held_received: 'received', hops: 'hops',
    st_success: 'Success', st_rejected: 'Rejected', st_under_review: 'Under review', st_request_accepted: 'Request accepted',
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
    offline: 'Офлайн', offline_note: 'Платите и получайте без сети: кошелёк на этом устройстве сам подписывает и проверяет платежи; зачислите их на счёт, когда сеть вернётся.',
    purse_online: 'Онлайн: подключение и пополнение', purse_setup: 'Подключить / обновить кошелёк (онлайн)', purse_load: 'Пополнить офлайн-кошелёк со счёта (онлайн)',
    offline_pay: 'Оплатить офлайн', payee_device: 'Ключ устройства получателя', offline_sign: 'Подписать офлайн-платёж',
    offline_show: 'Покажите получателю (QR-код, текст или NFC):', offline_scan: 'или прочитайте его QR-код с фото или изображения', qr_none: 'в изображении не найден QR-код', offline_qr_read: 'QR-код прочитан', offline_qr: 'QR-код', camera: 'Сканировать камерой', camera_stop: 'Выключить камеру', no_camera: 'в этом браузере камеру открыть нельзя', bytes: 'байт',
    offline_receive: 'Получить офлайн', my_device: 'Ключ моего устройства', offline_paste: 'Вставьте платёж',
    offline_accept: 'Проверить и принять', purse_holdings: 'Офлайн-средства', purse_deposit: 'Зачислить на мой счёт (онлайн)',
    purse_balance: 'Офлайн-баланс', purse_pending: 'Получено, ждёт зачисления', purse_until: 'Подключиться до',
    purse_left: 'Осталось офлайн-платежей', purse_none: 'Кошелька ещё нет: подключите его, пока есть сеть',
    purse_ready: 'Кошелёк сертифицирован', loaded: 'Пополнено', received_pending: 'Получено (ждёт зачисления)',
    sent_offline: 'Подписано офлайн', deposited: 'Зачисление', settled: 'зачислено', already_settled: 'уже зачислено',
    double_spend: 'двойная трата — отказано', held_loaded: 'пополнение', held_received: 'получено', hops: 'переходов',
    st_success: 'Успешно', st_rejected: 'Отклонено', st_under_review: 'На рассмотрении', st_request_accepted: 'Заявка принята',
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
    offline: 'Офлайн', offline_note: 'Желісіз төлеңіз және қабылдаңыз: осы құрылғыдағы әмиян төлемдерге өзі қол қояды және тексереді; желі қайтқанда шотқа есептеңіз.',
    purse_online: 'Онлайн: қосу және толтыру', purse_setup: 'Әмиянды қосу / жаңарту (онлайн)', purse_load: 'Офлайн әмиянды шоттан толтыру (онлайн)',
    offline_pay: 'Офлайн төлеу', payee_device: 'Алушы құрылғысының кілті', offline_sign: 'Офлайн төлемге қол қою',
    offline_show: 'Алушыға көрсетіңіз (QR код, мәтін немесе NFC):', offline_scan: 'немесе оның QR кодын фотодан не суреттен оқыңыз', qr_none: 'суретте QR код табылмады', offline_qr_read: 'QR код оқылды', offline_qr: 'QR код', camera: 'Камерамен сканерлеу', camera_stop: 'Камераны өшіру', no_camera: 'бұл браузерде камераны ашу мүмкін емес', bytes: 'байт',
    offline_receive: 'Офлайн қабылдау', my_device: 'Менің құрылғымның кілті', offline_paste: 'Төлемді қойыңыз',
    offline_accept: 'Тексеріп қабылдау', purse_holdings: 'Офлайн қаражат', purse_deposit: 'Менің шотыма есептеу (онлайн)',
    purse_balance: 'Офлайн баланс', purse_pending: 'Алынды, есептеуді күтуде', purse_until: 'Қосылу мерзімі',
    purse_left: 'Қалған офлайн төлемдер', purse_none: 'Әмиян әлі жоқ: желі барда қосыңыз',
    purse_ready: 'Әмиян сертификатталды', loaded: 'Толтырылды', received_pending: 'Алынды (есептеуді күтуде)',
    sent_offline: 'Офлайн қол қойылды', deposited: 'Есептеу', settled: 'есептелді', already_settled: 'бұрын есептелген',
    double_spend: 'қос жұмсау — бас тартылды', held_loaded: 'толтыру', held_received: 'алынған', hops: 'өтулер',
    st_success: 'Сәтті', st_rejected: 'Қабылданбады', st_under_review: 'Қаралуда', st_request_accepted: 'Өтінім қабылданды',
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
